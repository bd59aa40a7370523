//! placeholder: filled in by the file-log work
