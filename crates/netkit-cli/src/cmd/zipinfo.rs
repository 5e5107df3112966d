//! `netkit zipinfo FILE.zip`: list a ZIP archive's entries (name, CRC-32, compressed and
//! uncompressed size, method) from its central directory, with every record decoded
//! by `netkit::pack`.
//!
//! It finds the End Of Central Directory record by scanning back from the end (past
//! an archive comment), follows a ZIP64 end record and ZIP64 extra fields when the
//! 32-bit fields are saturated, tolerates data prepended to the archive, and decodes
//! names as UTF-8 (flag bit 11) or CP437. Entries written with data descriptors
//! (flag bit 3) show their real sizes because the central directory has them. It does
//! not decompress or verify entry data, and it does not support multi-disk archives.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use netkit::pack::Struct;

/// Arguments of `netkit zipinfo`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Prints one line per entry: CRC-32 (hex), compressed size, \
uncompressed size, method, name. Names ending in '/' are directories."
)]
pub struct Args {
    /// The ZIP archive to list.
    #[arg(value_name = "FILE.zip")]
    file: PathBuf,
}

/// One entry of the central directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name, decoded (UTF-8 or CP437).
    pub name: String,
    /// CRC-32 of the uncompressed data.
    pub crc32: u32,
    /// Size of the stored (compressed) data.
    pub compressed: u64,
    /// Size of the data once uncompressed.
    pub uncompressed: u64,
    /// Compression method number.
    pub method: u16,
    /// General-purpose flag bits.
    pub flags: u16,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD64_LOCATOR_SIG: u32 = 0x0706_4b50;
const EOCD64_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const EOCD_LEN: usize = 22;
const EOCD64_LOCATOR_LEN: usize = 20;
const EOCD64_LEN: usize = 56;
const CENTRAL_LEN: usize = 46;
const U32_MAX: u64 = 0xffff_ffff;

/// The records of the archive trailer and directory, as struct formats.
struct Formats {
    /// End of central directory: signature, disk, cd disk, entries on disk, entries,
    /// cd size, cd offset, comment length.
    eocd: Struct,
    /// ZIP64 end locator: signature, disk of the ZIP64 end record, its offset, disks.
    locator: Struct,
    /// ZIP64 end record: signature, record size, versions (2), disk, cd disk,
    /// entries on disk, entries, cd size, cd offset.
    eocd64: Struct,
    /// Central directory header (46 bytes).
    central: Struct,
    /// An extra-field header: id, data size.
    extra: Struct,
}

impl Formats {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            eocd: Struct::new("<IHHHHIIH")?,
            locator: Struct::new("<IIQI")?,
            eocd64: Struct::new("<IQHHIIQQQQ")?,
            central: Struct::new("<IHHHHHHIIIHHHHHII")?,
            extra: Struct::new("<HH")?,
        })
    }
}

/// Unpacks an integer-only record at `off` into `u64`s (through the allocation-free
/// integer path of `netkit::pack`).
fn fields(st: &Struct, buf: &[u8], off: usize) -> anyhow::Result<Vec<u64>> {
    let off = isize::try_from(off).context("offset too large")?;
    let mut out = [0i128; 17];
    let n = st.unpack_ints_from(buf, off, &mut out)?;
    out.get(..n)
        .context("record has too many fields")?
        .iter()
        .map(|&i| u64::try_from(i).context("negative field"))
        .collect()
}

/// Reads `len` bytes at `pos`, failing with a clear message when the file is shorter.
fn read_at(f: &mut File, pos: u64, len: u64, what: &str, file_len: u64) -> anyhow::Result<Vec<u8>> {
    if pos.checked_add(len).map_or(true, |end| end > file_len) {
        bail!(
            "truncated or corrupt archive: {what} ({len} bytes at offset {pos}) runs past the end of the file ({file_len} bytes)"
        );
    }
    let mut buf = vec![0; usize::try_from(len).context("record too large")?];
    f.seek(SeekFrom::Start(pos))?;
    f.read_exact(&mut buf)
        .with_context(|| format!("reading {what}"))?;
    Ok(buf)
}

/// Where the central directory is, from the end records.
#[derive(Debug)]
struct Directory {
    entries: u64,
    size: u64,
    offset: u64,
}

/// Finds and decodes the end records. Returns the directory's location, with the
/// offset already adjusted for any data prepended to the archive.
fn find_directory(f: &mut File, file_len: u64, fm: &Formats) -> anyhow::Result<Directory> {
    const MAX_TAIL: u64 = (EOCD_LEN + 0xffff + EOCD64_LOCATOR_LEN + EOCD64_LEN) as u64;
    if file_len < EOCD_LEN as u64 {
        bail!("not a ZIP archive: {file_len} bytes is too short for an end of central directory record");
    }
    let tail_len = file_len.min(MAX_TAIL);
    let tail_start = file_len - tail_len;
    let tail = read_at(f, tail_start, tail_len, "archive trailer", file_len)?;
    // Scan back for the last EOCD signature whose comment fits in the file.
    let mut found = None;
    for p in (0..=tail.len() - EOCD_LEN).rev() {
        if tail[p..p + 4] != [0x50, 0x4b, 0x05, 0x06] {
            continue;
        }
        let r = fields(&fm.eocd, &tail, p)?;
        if r[0] == u64::from(EOCD_SIG) && p + EOCD_LEN + r[7] as usize <= tail.len() {
            found = Some((p, r));
            break;
        }
    }
    let Some((p, r)) = found else {
        bail!("not a ZIP archive: no end of central directory record");
    };
    let eocd_pos = tail_start + p as u64;
    let (disk, cd_disk) = (r[1], r[2]);
    let mut dir = Directory {
        entries: r[4],
        size: r[5],
        offset: r[6],
    };
    let mut end_pos = eocd_pos;
    // A ZIP64 locator sits right before the EOCD record.
    if p >= EOCD64_LOCATOR_LEN {
        let lp = p - EOCD64_LOCATOR_LEN;
        let loc = fields(&fm.locator, &tail, lp)?;
        if loc[0] == u64::from(EOCD64_LOCATOR_SIG) {
            if loc[1] != 0 || loc[3] > 1 {
                bail!("multi-disk ZIP archives are not supported");
            }
            // The ZIP64 end record normally precedes the locator; its recorded offset
            // does not account for prepended data, so try that position first.
            let loc_pos = tail_start + lp as u64;
            let before = loc_pos.checked_sub(EOCD64_LEN as u64);
            let mut rec = None;
            for pos in before.into_iter().chain([loc[2]]) {
                if pos + EOCD64_LEN as u64 > file_len {
                    continue;
                }
                let b = read_at(f, pos, EOCD64_LEN as u64, "ZIP64 end record", file_len)?;
                let z = fields(&fm.eocd64, &b, 0)?;
                if z[0] == u64::from(EOCD64_SIG) {
                    rec = Some((pos, z));
                    break;
                }
            }
            let Some((pos, z)) = rec else {
                bail!("corrupt archive: ZIP64 locator points to no ZIP64 end of central directory record");
            };
            if z[4] != 0 || z[5] != 0 {
                bail!("multi-disk ZIP archives are not supported");
            }
            dir = Directory {
                entries: z[7],
                size: z[8],
                offset: z[9],
            };
            end_pos = pos;
        }
    }
    if end_pos == eocd_pos && (disk != 0 || cd_disk != 0) {
        bail!("multi-disk ZIP archives are not supported");
    }
    let Some(concat) = end_pos
        .checked_sub(dir.size)
        .and_then(|x| x.checked_sub(dir.offset))
    else {
        bail!(
            "truncated or corrupt archive: central directory ({} bytes at offset {}) does not fit before its end record at offset {end_pos}",
            dir.size,
            dir.offset
        );
    };
    dir.offset += concat;
    Ok(dir)
}

/// Reads every entry of the archive's central directory.
pub fn read_entries(path: &Path) -> anyhow::Result<Vec<Entry>> {
    let fm = Formats::new()?;
    let mut f = File::open(path)?;
    let file_len = f.metadata()?.len();
    let dir = find_directory(&mut f, file_len, &fm)?;
    let cd = read_at(&mut f, dir.offset, dir.size, "central directory", file_len)?;
    let mut entries = Vec::new();
    let mut pos = 0usize;
    while pos < cd.len() {
        let n = entries.len() + 1;
        if cd.len() - pos < CENTRAL_LEN {
            bail!("corrupt archive: central directory entry {n} is truncated");
        }
        let h = fields(&fm.central, &cd, pos)?;
        if h[0] != u64::from(CENTRAL_SIG) {
            bail!(
                "corrupt archive: bad signature {:#010x} for central directory entry {n} at offset {}",
                h[0],
                dir.offset + pos as u64
            );
        }
        let (flags, method) = (h[3] as u16, h[4] as u16);
        let crc32 = h[7] as u32;
        let (mut compressed, mut uncompressed) = (h[8], h[9]);
        let (name_len, extra_len, comment_len) = (h[10] as usize, h[11] as usize, h[12] as usize);
        let name_at = pos + CENTRAL_LEN;
        let end = name_at + name_len + extra_len + comment_len;
        if end > cd.len() {
            bail!("corrupt archive: central directory entry {n} runs past the directory's end");
        }
        let name_bytes = &cd[name_at..name_at + name_len];
        let extra = &cd[name_at + name_len..name_at + name_len + extra_len];
        if uncompressed == U32_MAX || compressed == U32_MAX {
            let (u, c) = zip64_sizes(&fm, extra, uncompressed == U32_MAX, compressed == U32_MAX)
                .with_context(|| format!("entry {n} ({})", decode_name(name_bytes, flags)))?;
            uncompressed = u.unwrap_or(uncompressed);
            compressed = c.unwrap_or(compressed);
        }
        entries.push(Entry {
            name: decode_name(name_bytes, flags),
            crc32,
            compressed,
            uncompressed,
            method,
            flags,
        });
        pos = end;
    }
    if entries.len() as u64 != dir.entries {
        bail!(
            "corrupt archive: end record says {} entries, central directory has {}",
            dir.entries,
            entries.len()
        );
    }
    Ok(entries)
}

/// Reads the 64-bit sizes from a ZIP64 extra field (id 1): the uncompressed size comes
/// first, then the compressed size, each present only when its 32-bit field is saturated.
fn zip64_sizes(
    fm: &Formats,
    extra: &[u8],
    want_uncompressed: bool,
    want_compressed: bool,
) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let u64_le = Struct::new("<Q")?;
    let mut pos = 0;
    while extra.len() - pos >= 4 {
        let h = fields(&fm.extra, extra, pos)?;
        let (id, len) = (h[0], h[1] as usize);
        let data = extra
            .get(pos + 4..pos + 4 + len)
            .context("corrupt extra field: runs past its end")?;
        if id == 1 {
            let mut at = 0;
            let mut take = |want: bool| -> anyhow::Result<Option<u64>> {
                if !want {
                    return Ok(None);
                }
                if data.len() < at + 8 {
                    bail!("corrupt ZIP64 extra field: too short for the sizes it must hold");
                }
                let v = fields(&u64_le, data, at)?[0];
                at += 8;
                Ok(Some(v))
            };
            let u = take(want_uncompressed)?;
            let c = take(want_compressed)?;
            return Ok((u, c));
        }
        pos += 4 + len;
    }
    bail!("sizes are 0xFFFFFFFF but there is no ZIP64 extra field")
}

/// Decodes an entry name: UTF-8 when flag bit 11 is set, else CP437.
fn decode_name(b: &[u8], flags: u16) -> String {
    if flags & 0x800 != 0 {
        String::from_utf8_lossy(b).into_owned()
    } else {
        b.iter().map(|&c| cp437(c)).collect()
    }
}

/// The Unicode character of a CP437 byte (ASCII below 0x80, as Python's codec does).
fn cp437(c: u8) -> char {
    const HIGH: [char; 128] = [
        'Ç', 'ü', 'é', 'â', 'ä', 'à', 'å', 'ç', 'ê', 'ë', 'è', 'ï', 'î', 'ì', 'Ä', 'Å', //
        'É', 'æ', 'Æ', 'ô', 'ö', 'ò', 'û', 'ù', 'ÿ', 'Ö', 'Ü', '¢', '£', '¥', '₧', 'ƒ', //
        'á', 'í', 'ó', 'ú', 'ñ', 'Ñ', 'ª', 'º', '¿', '⌐', '¬', '½', '¼', '¡', '«', '»', //
        '░', '▒', '▓', '│', '┤', '╡', '╢', '╖', '╕', '╣', '║', '╗', '╝', '╜', '╛', '┐', //
        '└', '┴', '┬', '├', '─', '┼', '╞', '╟', '╚', '╔', '╩', '╦', '╠', '═', '╬', '╧', //
        '╨', '╤', '╥', '╙', '╘', '╒', '╓', '╫', '╪', '┘', '┌', '█', '▄', '▌', '▐', '▀', //
        'α', 'ß', 'Γ', 'π', 'Σ', 'σ', 'µ', 'τ', 'Φ', 'Θ', 'Ω', 'δ', '∞', 'φ', 'ε', '∩', //
        '≡', '±', '≥', '≤', '⌠', '⌡', '÷', '≈', '°', '∙', '·', '√', 'ⁿ', '²', '■', '\u{a0}',
    ];
    match c.checked_sub(0x80) {
        None => char::from(c),
        Some(i) => HIGH[usize::from(i)],
    }
}

/// The name of a compression method.
fn method_name(m: u16) -> String {
    match m {
        0 => "stored",
        1 => "shrunk",
        2..=5 => "reduced",
        6 => "imploded",
        8 => "deflated",
        9 => "deflate64",
        10 => "terse",
        12 => "bzip2",
        14 => "lzma",
        93 => "zstd",
        95 => "xz",
        96 => "jpeg",
        97 => "wavpack",
        98 => "ppmd",
        99 => "aes",
        other => return format!("method-{other}"),
    }
    .to_string()
}

/// Runs `netkit zipinfo`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let entries = read_entries(&args.file).with_context(|| format!("{}", args.file.display()))?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<8}  {:>12}  {:>12}  {:<9} Name",
        "CRC-32", "Compressed", "Uncompressed", "Method"
    )?;
    for e in &entries {
        writeln!(
            out,
            "{:08x}  {:>12}  {:>12}  {:<9} {}",
            e.crc32,
            e.compressed,
            e.uncompressed,
            method_name(e.method),
            e.name
        )?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp437_matches_the_codec() {
        assert_eq!(cp437(b'A'), 'A');
        assert_eq!(cp437(0x80), 'Ç');
        assert_eq!(cp437(0x9e), '₧');
        assert_eq!(cp437(0xe1), 'ß');
        assert_eq!(cp437(0xff), '\u{a0}');
        assert_eq!(decode_name(b"caf\x82", 0), "café");
        assert_eq!(decode_name("café".as_bytes(), 0x800), "café");
    }

    #[test]
    fn method_names() {
        assert_eq!(method_name(0), "stored");
        assert_eq!(method_name(8), "deflated");
        assert_eq!(method_name(12), "bzip2");
        assert_eq!(method_name(14), "lzma");
        assert_eq!(method_name(77), "method-77");
    }
}
