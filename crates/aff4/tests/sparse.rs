//! An exabyte-sized sparse map (as Evimetry's ExabyteSparse errata image describes: size
//! 0x7ffffffffffffe00, symbolic target offsets near 2^62) is read by region, never by size.

#![allow(clippy::unwrap_used)]

use aff4::imager::{Ending, ImagerOptions};
use aff4::map::write::MapBuilder;
use aff4::rdf::Node;
use aff4::volume::write::{Mode, VolumeWriter};
use aff4::{vocab, Container};

#[test]
fn exabyte_sparse_map_reads_by_region() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sparse.aff4");
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let mut w = vol.image(&ImagerOptions { hashes: vec![], ..ImagerOptions::default() }, &[vocab::IMAGE], Some(65536)).unwrap();
    let data: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8 + 1).collect();
    w.write(0, data.clone()).unwrap();
    let r = w.finish(65536, Ending::Complete, vec![]).unwrap().result;

    const SIZE: u64 = 0x7fff_ffff_ffff_fe00;
    const FAR: u64 = 1 << 62;
    let m = aff4::urn::new_urn();
    let mut b = MapBuilder::new();
    let s = b.target(&r.stream_urn);
    let ff = b.target(&format!("{}SymbolicStreamFF", vocab::AFF4));
    let unk = b.target(vocab::UNKNOWN_DATA);
    b.push(0x1000, 65536, s, 0);
    b.push(FAR, 0x20000, ff, FAR);
    b.push(SIZE - 0x200, 0x200, unk, SIZE - 0x200);
    vol.add_segment(&format!("{m}/map"), &b.map_bytes()).unwrap();
    vol.add_segment(&format!("{m}/idx"), &b.idx_bytes()).unwrap();
    let g = vol.graph_mut();
    g.add(&m, vocab::RDF_TYPE, Node::iri(vocab::MAP));
    g.add(&m, vocab::SIZE, Node::long(SIZE));
    g.add(&m, vocab::DEPENDENT_STREAM, Node::iri(&r.stream_urn));
    g.add(&m, vocab::MAP_GAP_DEFAULT_STREAM, Node::iri(vocab::ZERO));
    vol.finish().unwrap();

    let c = Container::open(&[&p]).unwrap();
    let st = c.open_stream(&m).unwrap();
    assert_eq!(st.size(), SIZE);
    let map = c.open_map(&m).unwrap();
    assert_eq!(map.regions().len(), 6, "{:?}", map.regions());
    let mut buf = vec![0u8; 0x2000];
    st.read_exact_at(0x1000 - 0x1000, &mut buf).unwrap();
    assert!(buf[..0x1000].iter().all(|&x| x == 0) && buf[0x1000..] == data[..0x1000]);
    st.read_exact_at(FAR - 0x1000, &mut buf).unwrap();
    assert!(buf[..0x1000].iter().all(|&x| x == 0) && buf[0x1000..].iter().all(|&x| x == 0xff));
    st.read_exact_at(SIZE - 0x1000, &mut buf[..0x1000]).unwrap();
    assert!(buf[..0xe00].iter().all(|&x| x == 0));
    let want: Vec<u8> = (SIZE - 0x200..SIZE).map(|p| b"UNKNOWN"[((p % (1 << 20)) % 7) as usize]).collect();
    assert_eq!(&buf[0xe00..0x1000], &want[..]);
    assert_eq!(st.read_at(SIZE, &mut buf).unwrap(), 0);
    // Listing does not touch the virtual size.
    assert!(c.streams().iter().any(|s| s.urn == m && s.size == Some(SIZE)));
}

/// Maps whose targets are maps: a self-reference, a two-map cycle and a chain deeper than the
/// limit are refused with an error; a short chain reads through.
#[test]
fn map_recursion_is_bounded_and_cycles_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("cycles.aff4");
    let mut vol = VolumeWriter::create(&p, Mode::CreateNew).unwrap();
    let add_map = |vol: &mut VolumeWriter, urn: &str, target: &str| {
        let mut b = MapBuilder::new();
        let t = b.target(target);
        b.push(0, 4096, t, 0);
        vol.add_segment(&format!("{urn}/map"), &b.map_bytes()).unwrap();
        vol.add_segment(&format!("{urn}/idx"), &b.idx_bytes()).unwrap();
        let g = vol.graph_mut();
        g.add(urn, vocab::RDF_TYPE, Node::iri(vocab::MAP));
        g.add(urn, vocab::SIZE, Node::long(4096));
    };
    add_map(&mut vol, "aff4://self", "aff4://self");
    add_map(&mut vol, "aff4://a", "aff4://b");
    add_map(&mut vol, "aff4://b", "aff4://a");
    // A chain of 40 maps ending in a symbolic stream, and a short one of 3.
    for i in 0..40 {
        let target = if i == 39 { format!("{}SymbolicStream41", vocab::AFF4) } else { format!("aff4://deep{}", i + 1) };
        add_map(&mut vol, &format!("aff4://deep{i}"), &target);
    }
    add_map(&mut vol, "aff4://short0", "aff4://short1");
    add_map(&mut vol, "aff4://short1", "aff4://short2");
    add_map(&mut vol, "aff4://short2", &format!("{}SymbolicStream41", vocab::AFF4));
    vol.finish().unwrap();

    let c = Container::open(&[&p]).unwrap();
    let mut buf = [0u8; 16];
    for urn in ["aff4://self", "aff4://a", "aff4://deep0"] {
        // The map itself may open (its unreadable target is recorded), but reading must fail cleanly.
        let failed = match c.open_stream(urn) {
            Err(_) => true,
            Ok(s) => s.read_exact_at(0, &mut buf).is_err(),
        };
        assert!(failed, "{urn} must not read");
    }
    let s = c.open_stream("aff4://short0").unwrap();
    s.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"AAAAAAAAAAAAAAAA");
}
