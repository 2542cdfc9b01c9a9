//! Remote reboot and remote update (reference chapter 11, types 0x91-0x94).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::domain::PileCode;
use crate::message::{wire_enum, Body};
use crate::wire::parse::{code, pile_code, text, u16_le, u8_bin, PResult};
use crate::wire::text::FixedText;
use crate::wire::write::{BodyWriter, EncodeError};

wire_enum!(
    /// When the pile carries out a reboot or an update ("执行控制").
    ExecuteWhen allowed "1 (immediately) or 2 (when idle)" { Immediately = 1, WhenIdle = 2 }
);
wire_enum!(
    /// The pile's answer to a reboot command ("设置结果").
    RebootResult allowed "0 (failed) or 1 (succeeded)" { Failed = 0, Succeeded = 1 }
);
wire_enum!(
    /// The pile type named in an update command ("桩型号"). Note: coded 1/2 here, unlike the
    /// login frame's 0/1.
    UpdatePileKind allowed "1 (DC) or 2 (AC)" { Dc = 1, Ac = 2 }
);
wire_enum!(
    /// The outcome of a remote update ("升级状态").
    UpdateStatus allowed "0 (succeeded), 1 (wrong pile code), 2 (program does not match the pile model) or 3 (download timed out)" {
        Succeeded = 0,
        /// The pile code in the command is not this pile's ("编号错误").
        WrongPileCode = 1,
        /// The program does not match the pile model ("程序与桩型号不符").
        ModelMismatch = 2,
        /// Downloading the update file timed out ("下载更新文件超时").
        DownloadTimeout = 3,
    }
);

/// 0x92: the platform tells the pile to reboot (e.g. to recover from a hang).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reboot {
    pub pile_code: PileCode,
    pub when: ExecuteWhen,
}

impl Body for Reboot {
    const TYPE: u8 = 0x92;
    const NAME: &'static str = "reboot";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, when) = code("when")(i)?;
        Ok((i, Reboot { pile_code, when }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.when);
        Ok(())
    }
}

/// 0x91: the pile acknowledges a reboot command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootReply {
    pub pile_code: PileCode,
    pub result: RebootResult,
}

impl Body for RebootReply {
    const TYPE: u8 = 0x91;
    const NAME: &'static str = "reboot_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, RebootReply { pile_code, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.result);
        Ok(())
    }
}

/// The FTP password of an update command: 16 bytes of ASCII, NUL-padded. Its `Debug` form
/// is redacted so that logging a message never leaks it; the JSON form carries it (the
/// platform must be able to send it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UpdatePassword(pub FixedText<16>);

impl fmt::Debug for UpdatePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UpdatePassword(<redacted>)")
    }
}

/// 0x94: the platform tells the pile to download a firmware update by FTP and install it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Update {
    pub pile_code: PileCode,
    pub pile_kind: UpdatePileKind,
    /// Rated power of the pile. The reference states no unit; kW is what piles use in
    /// practice (the sample sends 15).
    pub pile_power_kw: u16,
    /// FTP server address, e.g. `"114.55.114.174"` (16 bytes, NUL-padded).
    pub server_address: FixedText<16>,
    pub server_port: u16,
    pub username: FixedText<16>,
    pub password: UpdatePassword,
    /// Path of the update file on the server (32 bytes, NUL-padded; named by the platform).
    pub file_path: FixedText<32>,
    pub when: ExecuteWhen,
    /// How long the pile may spend downloading, in minutes.
    pub download_timeout_min: u8,
}

impl Body for Update {
    const TYPE: u8 = 0x94;
    const NAME: &'static str = "update";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, pile_kind) = code("pile_kind")(i)?;
        let (i, pile_power_kw) = u16_le("pile_power")(i)?;
        let (i, server_address) = text("server_address")(i)?;
        let (i, server_port) = u16_le("server_port")(i)?;
        let (i, username) = text("username")(i)?;
        let (i, password) = text("password")(i)?;
        let (i, file_path) = text("file_path")(i)?;
        let (i, when) = code("when")(i)?;
        let (i, download_timeout_min) = u8_bin("download_timeout")(i)?;
        Ok((
            i,
            Update {
                pile_code,
                pile_kind,
                pile_power_kw,
                server_address,
                server_port,
                username,
                password: UpdatePassword(password),
                file_path,
                when,
                download_timeout_min,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.pile_kind);
        w.u16_le(self.pile_power_kw);
        w.text(&self.server_address);
        w.u16_le(self.server_port);
        w.text(&self.username);
        w.text(&self.password.0);
        w.text(&self.file_path);
        w.code(self.when);
        w.u8(self.download_timeout_min);
        Ok(())
    }
}

/// 0x93: the pile reports the outcome of a remote update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateReply {
    pub pile_code: PileCode,
    pub status: UpdateStatus,
}

impl Body for UpdateReply {
    const TYPE: u8 = 0x93;
    const NAME: &'static str = "update_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, status) = code("status")(i)?;
        Ok((i, UpdateReply { pile_code, status }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.status);
        Ok(())
    }
}
