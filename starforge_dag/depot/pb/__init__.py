"""Generated protobuf/gRPC modules for Depot's API; regenerate with scripts/gen_protos.sh."""
