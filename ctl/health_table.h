// `sluicectl health`: one row per region from what a node already answers: GET /v1/health (this
// node's window: error rate, shed rate and p99 of its own region and of the peers it polls; the
// regions' capacity) and GET /v1/detection (stream starts per second now and expected, their
// ratio, the verdict). Nothing is estimated: a figure the node did not give is null (JSON) or
// "-" (text), and so are rates and a p99 over no request and a capacity of 0 (unknown).
#ifndef SLUICE_CTL_HEALTH_TABLE_H_
#define SLUICE_CTL_HEALTH_TABLE_H_

#include <ostream>

#include <nlohmann/json.hpp>

namespace sluice {

// Rows sorted by region: {"region", "local", "verdict", "sps", "expected_sps", "ratio",
// "error_rate", "shed_rate", "p99_ms", "capacity_rps", "load_rps", "utilization",
// "reachable", "origins_down"}. `detection` may be null (no detector: steering is off).
nlohmann::json HealthRows(const nlohmann::json& health, const nlohmann::json& detection);

// The rows as a table: REGION VERDICT SPS EXPECTED RATIO ERR SHED P99 CAPACITY UTIL.
void RenderHealthRows(const nlohmann::json& rows, std::ostream& out);

}  // namespace sluice

#endif  // SLUICE_CTL_HEALTH_TABLE_H_
