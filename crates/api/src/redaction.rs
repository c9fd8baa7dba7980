//! Redaction rules, kept in the config (`sluice redact add`): capture-time rules go to each
//! capture's event builder, view-time rules mask what search, the event view, exports and
//! bundles show. The hashes are keyed by `CONFIG/redaction.key`, made on first use: hashes
//! of one config stay comparable, and a reader of the lake cannot recompute them.

use crate::error::{ApiError, ErrorCode, Result};
use crate::Sluice;
use sluice_capture::{RedactAt, RedactRule, Redactor};
use sluice_model::Event;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

const KEY_FILE: &str = "redaction.key";

fn key(config_dir: &Path) -> Result<Vec<u8>> {
    let path = config_dir.join(KEY_FILE);
    let io = |e: std::io::Error| ApiError::new(ErrorCode::Io, format!("{}: {e}", path.display()));
    match std::fs::read(&path) {
        Ok(k) if k.len() >= 16 => return Ok(k),
        Ok(_) => {
            return Err(ApiError::new(
                ErrorCode::Config,
                format!("{}: too short to be a redaction key", path.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    std::fs::create_dir_all(config_dir).map_err(io)?;
    let k: Vec<u8> = (0..2)
        .flat_map(|_| uuid::Uuid::new_v4().into_bytes())
        .collect();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(&path) {
        Ok(mut f) => {
            use std::io::Write;
            f.write_all(&k).and_then(|_| f.sync_all()).map_err(io)?;
            Ok(k)
        }
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => std::fs::read(&path).map_err(io),
        Err(e) => Err(io(e)),
    }
}

fn rule_error(e: sluice_capture::RuleError) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, e.to_string())
}

/// Each (connection, source)'s compiled masks; `None` when no rule applies to it.
type PerSource = HashMap<(String, String), Option<Arc<Redactor>>>;

/// View-time masks, compiled once per source as events of it come by.
pub(crate) struct ViewMask {
    rules: Vec<RedactRule>,
    key: Vec<u8>,
    compiled: Mutex<PerSource>,
}

impl ViewMask {
    pub(crate) fn apply(&self, e: &mut Event) {
        let at = (e.connection.clone(), e.source.clone());
        let r = {
            let mut c = self.compiled.lock().unwrap_or_else(|p| p.into_inner());
            c.entry(at)
                .or_insert_with(|| {
                    let mine: Vec<RedactRule> = self
                        .rules
                        .iter()
                        .filter(|r| r.applies_to(&e.connection, &e.source))
                        .cloned()
                        .collect();
                    // Checked when added; a rule edited by hand into something broken
                    // masks nothing rather than failing every search.
                    Redactor::new(&mine, &self.key)
                        .ok()
                        .filter(|r| !r.is_empty())
                        .map(Arc::new)
                })
                .clone()
        };
        if let Some(r) = r {
            r.event(e);
        }
    }
}

impl Sluice {
    pub fn redact_list(&self) -> Result<Vec<RedactRule>> {
        Ok(self.config()?.redactions)
    }

    /// Adds a rule after checking it (paths parse, patterns compile, the connection exists).
    pub fn redact_add(&self, rule: RedactRule) -> Result<Vec<RedactRule>> {
        rule.check().map_err(rule_error)?;
        let mut cfg = self.config()?;
        cfg.connection(&rule.connection)?;
        cfg.redactions.push(rule);
        cfg.save(&self.config_dir)?;
        Ok(cfg.redactions)
    }

    /// Removes the rule at `index` (as `redact list` numbers them, from 1).
    pub fn redact_remove(&self, index: usize) -> Result<Vec<RedactRule>> {
        let mut cfg = self.config()?;
        if index == 0 || index > cfg.redactions.len() {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!(
                    "no redaction rule {index}: there are {} (sluice redact list)",
                    cfg.redactions.len()
                ),
            ));
        }
        cfg.redactions.remove(index - 1);
        cfg.save(&self.config_dir)?;
        Ok(cfg.redactions)
    }

    /// The capture-time redactors of `connection`'s `sources` that have rules.
    pub(crate) fn capture_redactors(
        &self,
        connection: &str,
        sources: &[String],
    ) -> Result<HashMap<String, Arc<Redactor>>> {
        let rules: Vec<RedactRule> = self
            .config()?
            .redactions
            .into_iter()
            .filter(|r| r.at == RedactAt::Capture && r.connection == connection)
            .collect();
        if rules.is_empty() {
            return Ok(HashMap::new());
        }
        let key = key(&self.config_dir)?;
        let mut out = HashMap::new();
        for s in sources {
            let mine: Vec<RedactRule> = rules
                .iter()
                .filter(|r| r.applies_to(connection, s))
                .cloned()
                .collect();
            if !mine.is_empty() {
                let r = Redactor::new(&mine, &key).map_err(rule_error)?;
                out.insert(s.clone(), Arc::new(r));
            }
        }
        Ok(out)
    }

    /// Whether `connection` has capture-time rules for any source (a collector's sources are
    /// not known in advance).
    pub(crate) fn redacts_at_capture(&self, connection: &str) -> Result<bool> {
        Ok(self
            .config()?
            .redactions
            .iter()
            .any(|r| r.at == RedactAt::Capture && r.connection == connection))
    }

    /// The view-time masks, `None` when there are none.
    pub(crate) fn view_mask(&self) -> Result<Option<ViewMask>> {
        let rules: Vec<RedactRule> = self
            .config()?
            .redactions
            .into_iter()
            .filter(|r| r.at == RedactAt::View)
            .collect();
        if rules.is_empty() {
            return Ok(None);
        }
        Ok(Some(ViewMask {
            rules,
            key: key(&self.config_dir)?,
            compiled: Mutex::new(HashMap::new()),
        }))
    }
}
