#![no_main]
use aff4::map::MapReader;
use libfuzzer_sys::fuzz_target;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let swapped = data.first().is_some_and(|b| b & 1 == 1);
    let Ok(entries) = MapReader::parse_entries(data, swapped, "fuzz") else { return };
    let idx = MapReader::parse_idx(data);
    let targets: Vec<_> = (0..4).map(|_| Ok(Arc::new(aff4::symbolic::Symbolic::Unknown) as Arc<dyn aff4::Stream>)).collect();
    let Ok(m) = MapReader::new("aff4://m".into(), None, entries, idx, targets, Arc::new(aff4::symbolic::Symbolic::Constant(0))) else { return };
    let _ = m.regions();
    let mut buf = vec![0u8; 4096];
    let size = aff4::Stream::size(&m);
    for off in [0, size / 3, size.saturating_sub(10)] {
        let _ = aff4::Stream::read_at(&m, off, &mut buf);
    }
});
