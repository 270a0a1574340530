// Checks on the files that hold secrets (tunnel keys, tokens, passwords, TLS private keys).
#ifndef SLUICE_COMMON_SECRET_FILE_H_
#define SLUICE_COMMON_SECRET_FILE_H_

#include <string>
#include <string_view>

namespace sluice {

// Logs a warning when the file at `path` may be read by its group or by anyone: a secret
// belongs to the user that reads it, mode 0600 or 0400. Nothing if the file cannot be stat'ed
// (reading it reports that).
void WarnIfOthersMayRead(const std::string& path);

// True when a token or key of printable text looks guessable: fewer than 8 distinct
// characters (a repeated letter, "password", a short word typed twice).
bool LooksGuessable(std::string_view secret);

}  // namespace sluice

#endif  // SLUICE_COMMON_SECRET_FILE_H_
