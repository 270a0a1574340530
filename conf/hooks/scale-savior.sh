#!/bin/sh
# An example scale hook (controller.hooks.scale.exec in the README, "Scale hooks"): sluice runs
# it before an evacuation ramps traffic onto the savior regions, with the call as JSON on stdin
# and SLUICE_PLAN, SLUICE_REGION and SLUICE_SAVIORS in the environment. This one only logs the
# call, to the file named by its first argument (if any) and to stdout (which sluice keeps with
# the hook's result), and succeeds: put your autoscaler's API call where it says so.
#
#   controller:
#     hooks:
#       scale:
#         exec: [/usr/local/bin/scale-savior.sh, /var/log/sluice/scale-hook.log]
#
# Exit 0: done (sluice then waits for the saviors to report the capacity). Anything else is a
# failure, with what was printed as the reason. A hook that outlives its timeout is stopped
# with SIGTERM, then SIGKILL.
set -eu

call=$(cat)
line="$(date -u +%Y-%m-%dT%H:%M:%SZ) plan ${SLUICE_PLAN:-?} evacuates ${SLUICE_REGION:-?} to ${SLUICE_SAVIORS:-?}: $call"

if [ $# -ge 1 ]; then
  printf '%s\n' "$line" >>"$1"
fi
printf '%s\n' "$line"

# Here: ask for capacity in each savior, e.g. for SLUICE_SAVIORS=eu-west-1=60,us-west-2=40
#   for savior in $(printf '%s' "$SLUICE_SAVIORS" | tr ',' ' '); do
#     region=${savior%%=*}
#     your-autoscaler scale-up --region "$region" --for-plan "$SLUICE_PLAN"
#   done
exit 0
