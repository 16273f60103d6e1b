//! [`SysctlControl`] through `/proc/sys`, read and written from a thread inside the target
//! namespace (`/proc/sys/net` shows the namespace of the thread that opens it).

use std::io;

use async_trait::async_trait;

use crate::control::SysctlControl;
use crate::error::SysctlError;
use crate::names::NetnsRef;
use crate::netns::run_in_netns_async;
use crate::spec::SysctlKey;

/// Sysctls under `/proc/sys`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcSysctl;

#[async_trait]
impl SysctlControl for ProcSysctl {
    async fn read(&self, netns: &NetnsRef, key: &SysctlKey) -> Result<Option<String>, SysctlError> {
        let path = key.proc_path();
        let read = run_in_netns_async(netns, move || std::fs::read_to_string(path)).await?;
        match read {
            Ok(v) => Ok(Some(v.trim().to_owned())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SysctlError::Read {
                key: key.to_string(),
                netns: netns.clone(),
                source,
            }),
        }
    }

    async fn write(
        &self,
        netns: &NetnsRef,
        key: &SysctlKey,
        value: &str,
    ) -> Result<(), SysctlError> {
        let path = key.proc_path();
        let data = value.to_owned();
        run_in_netns_async(netns, move || std::fs::write(path, data))
            .await?
            .map_err(|source| SysctlError::Write {
                key: key.to_string(),
                value: value.to_owned(),
                netns: netns.clone(),
                source,
            })
    }
}
