//! `file://` URLs as responses: the path read from the URL (`localhost` or no
//! host), the size and type as headers, and byte ranges answered as a server
//! would (206 with `Content-Range`, 416 past the end), so downloads and resumes
//! treat local files like remote ones. Out of scope: other hosts (no SMB/NFS).

use std::fs::File;
use std::io::{self, BufReader};

use super::{FetchError, Response};

/// `file://[localhost]/path` as a [`Response`].
pub(super) fn open_file(
    url: &str,
    parsed: &::url::Url,
    offset: u64,
) -> Result<Response, FetchError> {
    let path = parsed.to_file_path().map_err(|()| FetchError::InvalidUrl {
        url: url.to_string(),
        reason: "file URLs name a local path (file:///path)".into(),
    })?;
    let ferr = |error| FetchError::File {
        path: path.clone(),
        error,
    };
    let mut file = File::open(&path).map_err(ferr)?;
    let meta = file.metadata().map_err(ferr)?;
    if meta.is_dir() {
        return Err(ferr(io::Error::other("is a directory")));
    }
    let size = meta.len();
    let mut headers = vec![
        (
            "content-type".to_string(),
            crate::http::mime::content_type(&path).to_string(),
        ),
        (
            "content-length".to_string(),
            size.saturating_sub(offset).to_string(),
        ),
    ];
    if let Ok(m) = meta.modified() {
        headers.push(("last-modified".to_string(), httpdate::fmt_http_date(m)));
    }
    let mut status = 200;
    if offset > 0 {
        if offset >= size {
            return Ok(Response {
                url: url.to_string(),
                status: 416,
                headers: vec![("content-range".into(), format!("bytes */{size}"))],
                body: BufReader::new(Box::new(io::empty())),
            });
        }
        io::Seek::seek(&mut file, io::SeekFrom::Start(offset)).map_err(ferr)?;
        status = 206;
        headers.push((
            "content-range".to_string(),
            format!("bytes {offset}-{}/{size}", size - 1),
        ));
    }
    Ok(Response {
        url: url.to_string(),
        status,
        headers,
        body: BufReader::with_capacity(64 * 1024, Box::new(file)),
    })
}
