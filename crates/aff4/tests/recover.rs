//! `recover` on an unclosed volume holding a member it cannot decode (found by fuzzing: a
//! local header whose compression method no AFF4 writer uses): the member is left out with a
//! note, and the rebuilt volume is still written and opens.

#![allow(clippy::unwrap_used)]

use aff4::volume::write::{Mode, VolumeWriter};
use std::sync::Arc;

#[test]
fn a_member_that_cannot_be_decoded_is_left_out_and_the_rest_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.aff4");
    let mut vol = VolumeWriter::create(&path, Mode::Truncate).unwrap();
    aff4::logical::add_file(&mut vol, "/notes/odd.txt", &mut &b"bytes nobody can decode"[..], &Default::default(), &[]).unwrap();
    aff4::logical::add_file(&mut vol, "/notes/kept.txt", &mut &b"bytes that come back"[..], &Default::default(), &[]).unwrap();
    vol.finish().unwrap();
    let mut b = std::fs::read(&path).unwrap();
    // Cut at the central directory (an unclosed volume) and give one member method 12800.
    let cd = b.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    b.truncate(cd);
    let name = b.windows(7).position(|w| w == b"odd.txt").unwrap();
    let lh = b[..name].windows(4).rposition(|w| w == b"PK\x03\x04").unwrap();
    b[lh + 8..lh + 10].copy_from_slice(&12800u16.to_le_bytes());
    let r = aff4::recover::recover_from(Arc::new(b), "cut".into()).unwrap();
    assert!(r.report.notes.iter().any(|n| n.contains("odd.txt") && n.contains("compression method 12800")), "{:?}", r.report.notes);
    let (out, _) = r.write_into(Vec::new(), "fixed").unwrap();
    let v = aff4::volume::Volume::open_zip(Arc::new(out), "fixed".into()).unwrap();
    let c = aff4::Container::from_volumes(vec![v], &aff4::OpenOptions::default()).unwrap();
    let kept = c.find_stream("kept.txt").unwrap();
    let s = c.open_stream(&kept).unwrap();
    let mut got = vec![0u8; s.size() as usize];
    s.read_at(0, &mut got).unwrap();
    assert_eq!(got, b"bytes that come back");
}
