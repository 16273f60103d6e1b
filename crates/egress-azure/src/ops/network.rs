//! [`ArmClient`] implementations of the `Microsoft.Network` traits (api-version
//! [`api_versions::NETWORK`]).

use async_trait::async_trait;

use super::{
    LoadBalancers, NetworkInterfaces, PublicIpAddresses, PublicIpPrefixes, Subnets, check_type,
};
use crate::api_versions::NETWORK;
use crate::client::ArmClient;
use crate::error::ArmError;
use crate::models::{LoadBalancer, NetworkInterface, PublicIpAddress, PublicIpPrefix, Subnet};
use crate::resource_id::{ResourceGroupId, ResourceId};

const LB: &str = "Microsoft.Network/loadBalancers";
const NIC: &str = "Microsoft.Network/networkInterfaces";
const PREFIX: &str = "Microsoft.Network/publicIPPrefixes";
const PIP: &str = "Microsoft.Network/publicIPAddresses";
const SUBNET: &str = "Microsoft.Network/virtualNetworks/subnets";

#[async_trait]
impl LoadBalancers for ArmClient {
    async fn get_load_balancer(&self, id: &ResourceId) -> Result<LoadBalancer, ArmError> {
        const OP: &str = "load_balancers.get";
        self.get_json(OP, &check_type(OP, id, LB)?, NETWORK).await
    }

    async fn create_or_update_load_balancer(
        &self,
        id: &ResourceId,
        lb: &LoadBalancer,
        if_match: Option<&str>,
    ) -> Result<LoadBalancer, ArmError> {
        const OP: &str = "load_balancers.create_or_update";
        self.put_json(OP, &check_type(OP, id, LB)?, NETWORK, lb, if_match)
            .await
    }

    async fn delete_load_balancer(&self, id: &ResourceId) -> Result<(), ArmError> {
        const OP: &str = "load_balancers.delete";
        self.delete(OP, &check_type(OP, id, LB)?, NETWORK).await
    }
}

#[async_trait]
impl NetworkInterfaces for ArmClient {
    async fn list_network_interfaces(
        &self,
        group: &ResourceGroupId,
    ) -> Result<Vec<NetworkInterface>, ArmError> {
        let path = format!("{group}/providers/Microsoft.Network/networkInterfaces");
        self.list_json("network_interfaces.list", &path, NETWORK)
            .await
    }

    async fn get_network_interface(&self, id: &ResourceId) -> Result<NetworkInterface, ArmError> {
        const OP: &str = "network_interfaces.get";
        self.get_json(OP, &check_type(OP, id, NIC)?, NETWORK).await
    }

    async fn create_or_update_network_interface(
        &self,
        id: &ResourceId,
        nic: &NetworkInterface,
        if_match: Option<&str>,
    ) -> Result<NetworkInterface, ArmError> {
        const OP: &str = "network_interfaces.create_or_update";
        self.put_json(OP, &check_type(OP, id, NIC)?, NETWORK, nic, if_match)
            .await
    }
}

#[async_trait]
impl PublicIpPrefixes for ArmClient {
    async fn get_public_ip_prefix(&self, id: &ResourceId) -> Result<PublicIpPrefix, ArmError> {
        const OP: &str = "public_ip_prefixes.get";
        self.get_json(OP, &check_type(OP, id, PREFIX)?, NETWORK)
            .await
    }

    async fn create_public_ip_prefix(
        &self,
        id: &ResourceId,
        prefix: &PublicIpPrefix,
    ) -> Result<PublicIpPrefix, ArmError> {
        const OP: &str = "public_ip_prefixes.create";
        self.put_json(OP, &check_type(OP, id, PREFIX)?, NETWORK, prefix, None)
            .await
    }

    async fn delete_public_ip_prefix(&self, id: &ResourceId) -> Result<(), ArmError> {
        const OP: &str = "public_ip_prefixes.delete";
        self.delete(OP, &check_type(OP, id, PREFIX)?, NETWORK).await
    }
}

#[async_trait]
impl PublicIpAddresses for ArmClient {
    async fn create_or_update_public_ip_address(
        &self,
        id: &ResourceId,
        ip: &PublicIpAddress,
    ) -> Result<PublicIpAddress, ArmError> {
        const OP: &str = "public_ip_addresses.create_or_update";
        self.put_json(OP, &check_type(OP, id, PIP)?, NETWORK, ip, None)
            .await
    }

    async fn delete_public_ip_address(&self, id: &ResourceId) -> Result<(), ArmError> {
        const OP: &str = "public_ip_addresses.delete";
        self.delete(OP, &check_type(OP, id, PIP)?, NETWORK).await
    }
}

#[async_trait]
impl Subnets for ArmClient {
    async fn get_subnet(&self, id: &ResourceId) -> Result<Subnet, ArmError> {
        const OP: &str = "subnets.get";
        self.get_json(OP, &check_type(OP, id, SUBNET)?, NETWORK)
            .await
    }
}
