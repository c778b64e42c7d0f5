//! Table-driven checks of an agent's [`StateTable`] for its unit tests: what each state
//! becomes (phase, error code, origin, retry), and that names outside the table are the
//! explicit retryable `TERN-B001`.
use crate::error::{codes, ErrorOrigin};
use crate::states::StateTable;
use crate::status::Phase;

/// A state name, the phase it must map to, and for failures the error code and origin.
pub type StateCase<'a> = (&'a str, Phase, Option<(&'a str, ErrorOrigin)>);

/// Panics, naming the state, unless every case classifies as said (failures retry exactly
/// when the platform caused them) and every name of `unknown` is `RETRYABLE_FAILED` `TERN-B001`.
pub fn assert_state_cases(table: &StateTable, cases: &[StateCase], unknown: &[&str]) {
    for (name, phase, error) in cases {
        let s = table.classify_with(name, "detail");
        assert_eq!(s.phase, *phase, "{name}");
        match error {
            Some((code, origin)) => {
                let e = s.error.as_ref().unwrap_or_else(|| panic!("{name}: a failure without an error"));
                assert_eq!((e.code.as_ref(), e.origin), (*code, *origin), "{name}");
                assert_eq!(e.is_retryable(), *origin == ErrorOrigin::System, "only system failures retry: {name}");
            }
            None => assert!(s.error.is_none(), "{name}"),
        }
    }
    for name in unknown {
        let s = table.classify(name);
        assert_eq!(s.phase, Phase::RetryableFailed, "{name:?}");
        assert_eq!(s.error.map(|e| e.code.to_string()).as_deref(), Some(codes::UNKNOWN_BACKEND_STATE), "{name:?}");
    }
}
