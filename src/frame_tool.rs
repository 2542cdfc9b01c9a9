//! `voltline frame decode|encode`: the protocol tool people who work with such protocols
//! always want. Decode prints a frame as JSON (type, name, sequence, encryption flag, every
//! field with its unit); encode turns that JSON back into hex. A bad frame exits non-zero with
//! the typed error on stderr.

use std::io::Read;
use std::process::ExitCode;

use clap::Subcommand;
use voltline_protocol::{frame, Frame};

#[derive(Subcommand)]
pub enum FrameCommand {
    /// Print a frame given as hex (spaces and a 0x prefix allowed) as JSON.
    ///
    /// Example: voltline frame decode "68 0D 0100 00 03 32010200000001 01 00 0E 58"
    Decode {
        /// The frame's bytes as hex; `-` reads them from standard input.
        hex: String,
        /// Print on one line instead of pretty-printed.
        #[arg(long)]
        compact: bool,
    },
    /// Print the hex of a frame given as JSON (the form `decode` prints).
    ///
    /// Example: voltline frame encode '{"name":"heartbeat","sequence":1,"body":{"pile_code":"32010200000001","connector":1,"health":"normal"}}'
    Encode {
        /// The frame as JSON; `-` reads it from standard input.
        json: String,
        /// Separate bytes with spaces.
        #[arg(long)]
        spaced: bool,
    },
}

fn read_arg(arg: String) -> Result<String, String> {
    if arg == "-" {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .map_err(|e| format!("cannot read standard input: {e}"))?;
        Ok(s)
    } else {
        Ok(arg)
    }
}

fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text
        .split_whitespace()
        .map(|w| w.trim_start_matches("0x").trim_start_matches("0X"))
        .collect();
    hex::decode(&clean).map_err(|e| {
        format!(
            "'{}' is not hex ({e}); give the frame's bytes as hex, e.g. 680D0100...",
            text.trim()
        )
    })
}

fn decode(hex_text: &str, compact: bool) -> Result<String, String> {
    let bytes = parse_hex(hex_text)?;
    let f = frame::decode(&bytes).map_err(|e| format!("invalid frame: {e}"))?;
    let out = if compact {
        serde_json::to_string(&f)
    } else {
        serde_json::to_string_pretty(&f)
    };
    out.map_err(|e| format!("cannot print the frame as JSON: {e}"))
}

fn encode(json: &str, spaced: bool) -> Result<String, String> {
    let f: Frame = serde_json::from_str(json).map_err(|e| {
        format!("invalid frame JSON: {e}; `voltline frame decode` shows the expected form")
    })?;
    let bytes = f.to_bytes().map_err(|e| format!("cannot encode: {e}"))?;
    let hex = hex::encode_upper(&bytes);
    Ok(if spaced {
        hex.as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).expect("hex is ASCII"))
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        hex
    })
}

pub fn run(cmd: FrameCommand) -> ExitCode {
    let result = match cmd {
        FrameCommand::Decode { hex, compact } => read_arg(hex).and_then(|h| decode(&h, compact)),
        FrameCommand::Encode { json, spaced } => read_arg(json).and_then(|j| encode(&j, spaced)),
    };
    match result {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEARTBEAT: &str = "68 0D 0100 00 03 32010200000001 01 00";

    fn with_crc(text: &str) -> String {
        let mut b = parse_hex(text).unwrap();
        b.extend_from_slice(&[0, 0]);
        frame::fix_checksum(&mut b);
        hex::encode_upper(b)
    }

    #[test]
    fn decode_then_encode_gives_the_same_hex() {
        let hex = with_crc(HEARTBEAT);
        let json = decode(&hex, false).unwrap();
        assert!(json.contains("\"name\": \"heartbeat\""), "{json}");
        assert!(json.contains("\"type\": \"0x03\""), "{json}");
        assert_eq!(encode(&json, false).unwrap(), hex);
    }

    #[test]
    fn bad_input_gives_errors_that_say_what_to_do() {
        assert!(decode("zz", false).unwrap_err().contains("not hex"));
        let mut bad = with_crc(HEARTBEAT);
        bad.replace_range(bad.len() - 4.., "0000");
        assert!(decode(&bad, false).unwrap_err().contains("checksum"));
        assert!(encode("{}", false)
            .unwrap_err()
            .contains("voltline frame decode"));
    }
}
