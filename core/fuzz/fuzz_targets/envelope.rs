#![no_main]

use std::sync::OnceLock;

use ed25519_dalek::VerifyingKey;
use libfuzzer_sys::fuzz_target;

// Deriving the public key costs a scalar multiplication; do it once, not per input.
static KEY: OnceLock<VerifyingKey> = OnceLock::new();

fuzz_target!(|bytes: &[u8]| {
    let key = KEY.get_or_init(kozomol_core_fuzz::seed_public_key);
    kozomol_core_fuzz::exercise_envelope(bytes, key);
});
