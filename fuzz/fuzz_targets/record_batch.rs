//! Record batches as a produce request carries them: `validate`,
//! `validate_produce` and `BatchIter` on arbitrary bytes, with small limits
//! (256 KiB batches, a 128 KiB decompression cap).
//!
//! Byte 0 chooses fix-ups (`floe_fuzz::batches::Fixups`: compress the
//! records section, set the length, recompute the CRC, send it twice) so that
//! mutations reach the record parser inside compressed batches.
//!
//! Invariants: the three agree with each other; a validated batch has a
//! correct CRC32C, dense offset deltas and fits the limits; twice a valid
//! batch is a valid two-batch request; memory stays within the input, the
//! cap and the codecs' fixed working memory.

#![no_main]

use broker::log::batch;
use floe_fuzz::batches::{Fixups, LIMITS, check_records};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fixups = Fixups::from_byte(mode);
    let one = fixups.apply(rest.to_vec());
    check_records(&one);
    if fixups.twice {
        let mut two = one.clone();
        two.extend_from_slice(&one);
        check_records(&two);
        if batch::validate(&one, &LIMITS).is_ok() {
            let p = batch::validate_produce(&two, &LIMITS)
                .expect("a valid batch sent twice is a valid produce request");
            assert_eq!(p.batches().len(), 2);
        }
    }
});
