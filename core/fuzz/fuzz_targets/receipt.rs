#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    kozomol_core_fuzz::exercise_receipt(bytes);
});
