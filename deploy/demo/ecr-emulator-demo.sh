#!/bin/sh
# ecr-emulator-demo ARGS...: runs `ecr-emulator ARGS -ca-out $DEMO_DIR/ecr-ca.pem`
# and publishes, on the shared demo volume, what the gateway containers need:
#
#   $DEMO_DIR/ecr-ca.pem      the emulator front's CA: nginx verifies ECR with it
#                             (proxy_ssl_trusted_certificate, deploy/demo/nginx/local/http.conf)
#   $DEMO_DIR/endpoints.env   the KEY=value lines ecr-emulator prints
#   $DEMO_DIR/aws-config      AWS shared config with `endpoint_url` = the emulator's
#                             API: tokenwriter reads it through AWS_CONFIG_FILE
#
# Why a wrapper: ecr-emulator listens on free loopback ports chosen at start, so
# the API URL is known only once it runs; the AWS SDK takes it from a shared
# config file without any change to tokenwriter's command. aws-config is
# written last and atomically: it is the compose health check's signal.
set -eu
DEMO_DIR=${DEMO_DIR:-/demo}
rm -f "$DEMO_DIR/aws-config" "$DEMO_DIR/endpoints.env" "$DEMO_DIR/ecr-ca.pem"

ecr-emulator "$@" -ca-out "$DEMO_DIR/ecr-ca.pem" >"$DEMO_DIR/endpoints.env" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT

# The CA is written before the endpoints are printed; BACKEND is the last line.
while ! grep -q '^ECR_EMULATOR_BACKEND=' "$DEMO_DIR/endpoints.env" 2>/dev/null; do
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid" || exit $?
		exit 1
	fi
	sleep 0.2
done
api=$(sed -n 's/^AWS_ENDPOINT_URL_ECR=//p' "$DEMO_DIR/endpoints.env")
printf '[default]\nendpoint_url = %s\n' "$api" >"$DEMO_DIR/aws-config.tmp"
mv "$DEMO_DIR/aws-config.tmp" "$DEMO_DIR/aws-config"

status=0
wait "$pid" || status=$?
# A trapped signal interrupts wait; wait again for the emulator's own exit.
if [ "$status" -gt 128 ]; then
	status=0
	wait "$pid" || status=$?
fi
exit "$status"
