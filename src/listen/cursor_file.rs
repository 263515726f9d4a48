//! `--cursor-file`: the id of the last event handled, kept across restarts. It is replaced
//! whole (a temporary file beside it, then a rename), so a listener killed at any moment leaves
//! either the old id or the new one, never a torn line: restarted, it skips nothing.
//!
//! Not synced to disk per event (a sync costs milliseconds on a disk, per event): the file
//! survives the listener's death and an orderly reboot; after a power cut it may hold an older
//! id, which repeats events but skips none on file systems that order a rename-replace after
//! the data (ext4's default `auto_da_alloc`, XFS, Btrfs).

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct CursorFile {
    path: PathBuf,
    temp: PathBuf,
}

impl CursorFile {
    /// The file at `path`; its folder must exist.
    pub fn new(path: &Path) -> io::Result<Self> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        if !folder.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("no folder {}", folder.display()),
            ));
        }
        let mut temp_name = std::ffi::OsString::from(".");
        temp_name.push(name);
        temp_name.push(format!(".{}.tmp", std::process::id()));
        Ok(CursorFile {
            path: path.to_owned(),
            temp: folder.join(temp_name),
        })
    }

    /// The id kept, if the file exists and holds one.
    pub fn read(&self) -> io::Result<Option<String>> {
        match std::fs::read_to_string(&self.path) {
            Ok(text) => {
                let id = text.strip_suffix('\n').unwrap_or(&text);
                Ok((!id.is_empty()).then(|| id.to_owned()))
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Replaces the kept id with `id`.
    pub fn write(&self, id: &str) -> io::Result<()> {
        std::fs::write(&self.temp, format!("{id}\n"))?;
        std::fs::rename(&self.temp, &self.path)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_id_whole() {
        let dir = tempfile::tempdir().unwrap();
        let cursor = CursorFile::new(&dir.path().join("pos")).unwrap();
        assert_eq!(cursor.read().unwrap(), None);
        cursor.write("a:1,b:2").unwrap();
        cursor.write(" 7 ").unwrap();
        assert_eq!(cursor.read().unwrap().as_deref(), Some(" 7 "));
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file is left");
        assert!(CursorFile::new(&dir.path().join("no/such/pos")).is_err());
    }
}
