//! [`NftControl`] through the `nftables` crate, which drives `nft -j`; the `nft` process is
//! started from a thread inside the target namespace so it acts on that namespace.

use async_trait::async_trait;
use nftables::helper::{self, NftablesError};

use crate::control::NftControl;
use crate::error::NftError;
use crate::names::NetnsRef;
use crate::netns::run_in_netns_async;
use crate::nft::{NftTable, NftTableId};

/// nftables through the `nft` binary.
#[derive(Debug, Clone)]
pub struct NftTables {
    /// The `nft` program.
    pub program: String,
}

impl Default for NftTables {
    fn default() -> Self {
        Self {
            program: "nft".into(),
        }
    }
}

fn detail(e: &NftablesError) -> String {
    match e {
        NftablesError::NftFailed { stderr, stdout, .. } => {
            let text = if stderr.trim().is_empty() {
                stdout
            } else {
                stderr
            };
            text.trim().to_owned()
        }
        other => other.to_string(),
    }
}

impl NftTables {
    /// Feeds one JSON document to `nft -j -f -` inside `netns`. The crate's own
    /// `apply_ruleset` does not capture stderr, which holds nft's error message, so the
    /// process is run here.
    async fn run(
        &self,
        netns: &NetnsRef,
        action: String,
        doc: nftables::schema::Nftables<'static>,
    ) -> Result<(), NftError> {
        let program = self.program.clone();
        let payload = serde_json::to_string(&doc).map_err(|source| NftError::Parse {
            table: action.clone(),
            netns: netns.clone(),
            source,
        })?;
        let result = run_in_netns_async(netns, move || run_nft(&program, &payload)).await?;
        result.map_err(|source| NftError::Nft {
            action,
            netns: netns.clone(),
            detail: detail(&source),
            source,
        })
    }
}

fn run_nft(program: &str, payload: &str) -> Result<(), NftablesError> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let execution = |inner| NftablesError::NftExecution {
        program: program.into(),
        inner,
    };
    let mut child = Command::new(program)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(execution)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(payload.as_bytes()).map_err(execution)?;
    }
    let output = child.wait_with_output().map_err(execution)?;
    if output.status.success() {
        return Ok(());
    }
    Err(NftablesError::NftFailed {
        program: program.into(),
        hint: "applying a batch".into(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    })
}

#[async_trait]
impl NftControl for NftTables {
    async fn read(&self, netns: &NetnsRef, id: &NftTableId) -> Result<Option<NftTable>, NftError> {
        let program = self.program.clone();
        let name = id.name.clone();
        let family = id.family.as_str();
        let listed = run_in_netns_async(netns, move || {
            helper::get_current_ruleset_raw(
                Some(program.as_str()),
                ["list", "table", family, name.as_str()],
            )
        })
        .await?;
        let raw = match listed {
            Ok(raw) => raw,
            // "No such file or directory": the table does not exist.
            Err(NftablesError::NftFailed { stderr, .. }) if stderr.contains("No such file") => {
                return Ok(None);
            }
            Err(source) => {
                return Err(NftError::Nft {
                    action: format!("list {id}"),
                    netns: netns.clone(),
                    detail: detail(&source),
                    source,
                });
            }
        };
        let value: serde_json::Value =
            serde_json::from_str(&raw).map_err(|source| NftError::Parse {
                table: id.to_string(),
                netns: netns.clone(),
                source,
            })?;
        Ok(Some(NftTable::from_listing(id, &value)))
    }

    async fn replace(&self, netns: &NetnsRef, table: &NftTable) -> Result<(), NftError> {
        self.run(
            netns,
            format!("replace {}", table.id()),
            table.replace_batch(),
        )
        .await
    }

    async fn delete(&self, netns: &NetnsRef, id: &NftTableId) -> Result<(), NftError> {
        self.run(netns, format!("delete {id}"), NftTable::delete_batch(id))
            .await
    }
}
