// fs.hpp - durable file operations
//
// "Durable" means: after the call returns, the data and the directory entry survive a
// power loss or kill -9. Every acknowledgement pecd gives (SMTP 250, API 2xx, a receipt
// marked sent) sits behind one of these.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

namespace pecd::fs {

// Writes data to path atomically (temporary file, fsync, rename, fsync of the directory).
// Throws TemporaryError on I/O failure (disk full, permission), leaving the old file.
void write_file_durable(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644);
// Writes data to path in place (create or truncate, write, fdatasync, fsync of the
// directory), without a temporary name: only for a file nobody reads until the caller
// records it afterwards, since a crash can leave it partly written. Saves the rename and
// the temporary name's directory entry. Throws TemporaryError on I/O failure.
void write_unreferenced_file_durable(const std::filesystem::path& path, std::string_view data,
                                     unsigned mode = 0644);
// The same without any sync, for a file whose durability the caller arranges otherwise
// (a FileSystemSync); on failure the file is removed.
void write_unreferenced_file(const std::filesystem::path& path, std::string_view data, unsigned mode = 0644);
// fsync of a directory, so a newly created or renamed entry is on disk.
void fsync_dir(const std::filesystem::path& dir);
// Reads a whole file; throws Error naming the path when it cannot.
std::string read_file(const std::filesystem::path& path);
// Creates the directory (and parents) with the given mode if missing.
void ensure_dir(const std::filesystem::path& dir, unsigned mode = 0750);

}  // namespace pecd::fs
