//! egress-sim: the whole kube-egress-gateway system on one Linux machine. A scenario file
//! becomes an Azure inventory (emulator), network namespaces for a VNet router, the internet
//! and every node, and real processes of our binaries; a minimal kubelet runs the real CNI
//! chain for pods, and a report tells which address each pod's traffic leaves from.

pub mod backend;
pub mod cli;
pub mod cluster;
pub mod cni;
pub mod components;
pub mod egress_watch;
pub mod exec;
pub mod fabric;
pub mod fabric_sync;
pub mod images;
pub mod k8s;
pub mod kubelet;
pub mod kubelet_api;
pub mod netns;
pub mod pod_status;
pub mod podman;
pub mod portforward;
pub mod prereq;
pub mod procs;
pub mod report;
pub mod scenario;
pub mod seed;
pub mod services;
pub mod spdy;
pub mod startup;
pub mod state;
pub mod streams;
pub mod system_pods;
pub mod teardown;
pub mod topology;
pub mod traffic;
pub mod uml;
pub mod upgrade;
