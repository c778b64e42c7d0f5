//! Plugin side: the agent's `tracing` events go to the gateway's log through
//! [`HostVTable::log`](super::abi::HostVTable::log). A plugin is a separate copy of
//! `tracing` with a dispatcher of its own; the glue installs this subscriber as that
//! copy's global default (unless the author installed one first).
use std::fmt::Write as _;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use super::abi::{LogFn, StrRef, LOG_DEBUG, LOG_ERROR, LOG_INFO, LOG_TRACE, LOG_WARN};

struct ToHost {
    log: LogFn,
    max: LevelFilter,
}

/// Sends this library's events to `log`, up to `level` (`error`..`trace`, `off`).
/// The first call wins; later calls (other agents of the library) change nothing.
pub(crate) fn install(log: LogFn, level: Option<&str>) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let max = level.and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::INFO);
        // An author who installed a subscriber of their own keeps it.
        let _ = tracing::subscriber::set_global_default(ToHost { log, max });
    });
}

#[derive(Default)]
struct Message {
    text: String,
    fields: String,
}

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.text, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.text.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

impl Subscriber for ToHost {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= self.max
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max)
    }

    fn new_span(&self, _span: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = Message::default();
        event.record(&mut message);
        let text = message.text + &message.fields;
        let level = match *event.metadata().level() {
            Level::ERROR => LOG_ERROR,
            Level::WARN => LOG_WARN,
            Level::INFO => LOG_INFO,
            Level::DEBUG => LOG_DEBUG,
            Level::TRACE => LOG_TRACE,
        };
        let module = event.metadata().target();
        // SAFETY: the host's log function takes borrowed texts for the duration of the call
        // and needs no context; the host is never unloaded before its plugins.
        unsafe { (self.log)(level, StrRef::new(module), StrRef::new(&text)) };
    }

    fn enter(&self, _span: &Id) {}

    fn exit(&self, _span: &Id) {}
}
