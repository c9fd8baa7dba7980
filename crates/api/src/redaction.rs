//! Redaction rules, kept in the config (`sluice redact add`): capture-time rules go to each
//! capture's event builder, view-time rules mask what search, the event view, exports and
//! bundles show. The hashes are keyed by `CONFIG/redaction.key`, made on first use: hashes
//! of one config stay comparable, and a reader of the lake cannot recompute them.

use crate::error::{ApiError, ErrorCode, Result};
use crate::Sluice;
use sluice_capture::{RedactAt, RedactRule, Redactions};
use sluice_model::Event;
use std::path::Path;
use std::sync::Arc;

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
    // Written whole under a name of its own, then linked into place: a reader never sees a
    // short key, and of two processes making one at once, one key wins for both.
    let tmp = config_dir.join(format!(".{KEY_FILE}.{}.tmp", uuid::Uuid::new_v4().simple()));
    {
        use std::io::Write;
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(&k).and_then(|_| f.sync_all()).map_err(io)?;
    }
    let linked = std::fs::hard_link(&tmp, &path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(k),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let theirs = std::fs::read(&path).map_err(io)?;
            if theirs.len() < 16 {
                return Err(ApiError::new(
                    ErrorCode::Config,
                    format!("{}: too short to be a redaction key", path.display()),
                ));
            }
            Ok(theirs)
        }
        Err(e) => Err(io(e)),
    }
}

fn rule_error(e: sluice_capture::RuleError) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, e.to_string())
}

impl Sluice {
    pub fn redact_list(&self) -> Result<Vec<RedactRule>> {
        Ok(self.config()?.redactions)
    }

    /// Adds a rule after checking it (paths parse, patterns compile, the connection exists).
    pub fn redact_add(&self, mut rule: RedactRule) -> Result<Vec<RedactRule>> {
        rule.check().map_err(rule_error)?;
        let mut cfg = self.config()?;
        let bus = cfg.connection(&rule.connection)?.settings.bus();
        // As the lake stores the source (`orders` read from PostgreSQL is `public.orders`).
        rule.source = rule
            .source
            .map(|s| sluice_bus::conventions(bus).source_name(&s));
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

    /// The capture-time rules, `None` when there are none.
    pub(crate) fn capture_redactions(&self) -> Result<Option<Arc<Redactions>>> {
        self.redactions(RedactAt::Capture)
    }

    /// Whether `connection` has capture-time rules.
    pub(crate) fn redacts_at_capture(&self, connection: &str) -> Result<bool> {
        Ok(self
            .config()?
            .redactions
            .iter()
            .any(|r| r.at == RedactAt::Capture && r.connection == connection))
    }

    /// The view-time masks, `None` when there are none.
    pub(crate) fn view_mask(&self) -> Result<Option<Arc<Redactions>>> {
        self.redactions(RedactAt::View)
    }

    fn redactions(&self, at: RedactAt) -> Result<Option<Arc<Redactions>>> {
        let rules = self.config()?.redactions;
        if !rules.iter().any(|r| r.at == at) {
            return Ok(None);
        }
        let key = key(&self.config_dir)?;
        Ok(Redactions::new(&rules, at, key).map(Arc::new))
    }
}

/// Applies view-time masks to an event about to be shown.
pub(crate) fn mask_event(mask: &Redactions, e: &mut Event) {
    if let Some(r) = mask.for_source(&e.connection, &e.source) {
        r.event(e);
    }
}
