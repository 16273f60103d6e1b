//! Batching: SGCs of one pool changing together cost one load-balancer write, one model write
//! and one write per instance, proven with the emulator's request log.

use crate::common::*;

const N: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_created_and_deleted_together_are_written_once_per_resource() {
    let h = Harness::start().await;
    let before = h.resource_ids();
    let op = h.operator().await;
    let started = std::time::Instant::now();
    for i in 0..N {
        // Both aliases of the same scale set.
        let spec = if i % 2 == 0 { PROFILE } else { NODEPOOL };
        h.create_sgc(&format!("batch-{i}"), spec).await;
    }
    let mut ports = Vec::new();
    for i in 0..N {
        let s = h.ready(&format!("batch-{i}")).await;
        ports.push(
            s.status
                .unwrap()
                .gateway_server_profile
                .unwrap()
                .port
                .unwrap(),
        );
    }
    let took = started.elapsed();
    ports.sort();
    assert_eq!(ports, vec![6000, 6001, 6002, 6003]);
    let log = h.emu.request_log();
    let counts = (
        log.count("LoadBalancers.CreateOrUpdate"),
        log.count("VirtualMachineScaleSets.Update")
            + log.count("VirtualMachineScaleSets.CreateOrUpdate"),
        log.count("VirtualMachineScaleSetVMs.Update"),
        log.count("PublicIPPrefixes.CreateOrUpdate"),
    );
    eprintln!(
        "{N} SGCs ready in {took:?}; LB writes, model writes, instance writes, prefixes = {counts:?}"
    );
    assert_eq!(
        counts,
        (1, 1, 2, N as u64),
        "one write per resource for the batch"
    );
    assert_eq!(h.instance_ipconfigs().await[0].len(), 1 + N);

    for i in 0..N {
        h.delete_sgc(&format!("batch-{i}")).await;
    }
    for i in 0..N {
        h.gone(&format!("batch-{i}")).await;
    }
    h.until("Azure to be back to the seed", || async {
        (h.resource_ids() == before).then_some(())
    })
    .await;
    let log2 = h.emu.request_log();
    let deletes = (
        log2.count("LoadBalancers.CreateOrUpdate") + log2.count("LoadBalancers.Delete") - counts.0,
        log2.count("VirtualMachineScaleSets.Update") - counts.1,
        log2.count("VirtualMachineScaleSetVMs.Update") - counts.2,
    );
    eprintln!("deleting {N}: LB writes+deletes, model writes, instance writes = {deletes:?}");
    // Removing the rules, then (once the instances left the backend pool) deleting the LB.
    assert_eq!(deletes, (2, 1, 2));
    op.stop().await;
}
