// sluicectl: the command-line client of sluice's admin API, for traffic engineers.
//
//   sluicectl [--admin URL]... [--admins FILE] [--token T | --token-file F] [--cacert FILE]
//             [--json] COMMAND
//     status
//     evacuate REGION --to A=70,B=30 [--ramp 1,5,25,50,100] [--hold 10s] [--force]
//     abort PLAN
//     restore REGION [--ramp 50,10,0] [--hold 10s] [--force]
//     set REGION [--fraction 25] [--to A=70,B=30] [--healthy yes|no] [--version N] [--force]
//     inject CLUSTER
//     watch [--interval 1s] [--count N] [--until-done]
//     health
//     history [--since seq:N|UNIX|RFC3339|10m] [--limit N] [--follow]
//     ... (the usage text in sluicectl.cc lists every command)
//
// Every command goes to every admin endpoint given (one per region: --admin repeated, or a
// file of "NAME URL" lines), and each endpoint's reply is reported on its own. The token comes
// from --token, --token-file or SLUICE_ADMIN_TOKEN; an https endpoint's CA bundle from --cacert
// or SLUICE_ADMIN_CACERT. Exit codes: 0 all endpoints succeeded,
// 1 at least one failed, 2 a usage error.
#ifndef SLUICE_CTL_SLUICECTL_H_
#define SLUICE_CTL_SLUICECTL_H_

#include <ostream>

namespace sluice {

int RunSluicectl(int argc, const char* const* argv, std::ostream& out, std::ostream& err);

}  // namespace sluice

#endif  // SLUICE_CTL_SLUICECTL_H_
