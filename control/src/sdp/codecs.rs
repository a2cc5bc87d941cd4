//! Static RTP payload types (RFC 3551 §6): an m-line may list `0 8 18`
//! without any `a=rtpmap`, and the recorder still has to know the codec.

/// `(encoding name, clock rate, channels)` of a static payload type.
pub fn static_payload_type(pt: u8) -> Option<(&'static str, u32, Option<u8>)> {
    Some(match pt {
        0 => ("PCMU", 8000, Some(1)),
        3 => ("GSM", 8000, Some(1)),
        4 => ("G723", 8000, Some(1)),
        5 => ("DVI4", 8000, Some(1)),
        6 => ("DVI4", 16000, Some(1)),
        7 => ("LPC", 8000, Some(1)),
        8 => ("PCMA", 8000, Some(1)),
        // G.722's RTP clock is 8000 although it samples at 16 kHz (RFC 3551 §4.5.2).
        9 => ("G722", 8000, Some(1)),
        10 => ("L16", 44100, Some(2)),
        11 => ("L16", 44100, Some(1)),
        12 => ("QCELP", 8000, Some(1)),
        13 => ("CN", 8000, Some(1)),
        14 => ("MPA", 90000, None),
        15 => ("G728", 8000, Some(1)),
        16 => ("DVI4", 11025, Some(1)),
        17 => ("DVI4", 22050, Some(1)),
        18 => ("G729", 8000, Some(1)),
        25 => ("CelB", 90000, None),
        26 => ("JPEG", 90000, None),
        28 => ("nv", 90000, None),
        31 => ("H261", 90000, None),
        32 => ("MPV", 90000, None),
        33 => ("MP2T", 90000, None),
        34 => ("H263", 90000, None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_and_unknown() {
        assert_eq!(static_payload_type(0), Some(("PCMU", 8000, Some(1))));
        assert_eq!(static_payload_type(9).map(|c| c.1), Some(8000));
        assert_eq!(static_payload_type(18).map(|c| c.0), Some("G729"));
        assert_eq!(static_payload_type(96), None);
        assert_eq!(static_payload_type(2), None);
    }
}
