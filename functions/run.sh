#!/bin/sh
# The stream function's start command (its Lambda handler is functions/run.sh): the Lambda Web Adapter
# (AWS_LAMBDA_EXEC_WRAPPER=/opt/bootstrap) runs it, waits for AWS_LWA_READINESS_CHECK_PATH to answer, then
# forwards each API Gateway request to this server and streams the answer back (AWS_LWA_INVOKE_MODE=response_stream).
# /opt/python is the dependency layer (uvicorn, starlette); LAMBDA_TASK_ROOT holds the `functions` package.
export PYTHONPATH="/opt/python:${LAMBDA_TASK_ROOT}${PYTHONPATH:+:${PYTHONPATH}}"
# --factory: uvicorn calls app_from_environment once at start-up, the function's composition root (cold start).
exec python -m uvicorn functions.handlers.stream:app_from_environment --factory \
  --host 127.0.0.1 --port "${AWS_LWA_PORT:-8080}" \
  --no-access-log --timeout-graceful-shutdown 5
