"""Generated protobuf/gRPC modules for BuildKit's API; regenerate with scripts/gen_protos.sh."""
