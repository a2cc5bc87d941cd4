//! pcap/pcapng reading: a hostile capture file gives an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use mediafork_dataplane::capture::{strip_link, CaptureReader};

fuzz_target!(|data: &[u8]| {
    let Ok(mut r) = CaptureReader::from_reader(std::io::Cursor::new(data.to_vec()), "fuzz") else { return };
    while let Some(Ok(p)) = r.next_packet() {
        let _ = strip_link(p.link, p.data);
    }
});
