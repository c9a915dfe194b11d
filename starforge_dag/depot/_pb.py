"""The generated Depot modules under short names, so the client reads like Depot's API."""

from .pb import depot_build_pb2 as build
from .pb import depot_build_pb2_grpc as build_grpc
from .pb import depot_buildkit_pb2 as buildkit
from .pb import depot_buildkit_pb2_grpc as buildkit_grpc
from .pb import depot_project_pb2 as project
from .pb import depot_project_pb2_grpc as project_grpc

__all__ = ["build", "build_grpc", "buildkit", "buildkit_grpc", "project", "project_grpc"]
