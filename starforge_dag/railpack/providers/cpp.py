"""C and C++ apps built with CMake or Meson (both through Ninja) into /build."""

from __future__ import annotations

from starforge_dag.railpack.context import GenerateContext, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider


class CppProvider(BaseProvider):
    """Apps with CMakeLists.txt or meson.build."""

    name = "cpp"
    looked_for = "CMakeLists.txt or meson.build"

    def detect(self, ctx: GenerateContext) -> bool:
        """A CMake or Meson project at the root."""
        return ctx.source.has_file("CMakeLists.txt") or ctx.source.has_file("meson.build")

    def plan(self, ctx: GenerateContext) -> None:
        """mise (build tools), build into /build, /build deployed; the binary is named after the app directory."""
        mise = ctx.mise
        cmake = ctx.source.has_file("CMakeLists.txt")
        if cmake:
            mise.default("cmake", "latest")
            mise.default("ninja", "latest")
        else:
            mise.default("meson", "latest")
            mise.default("ninja", "latest")
            mise.default("python", "latest")
            mise.default("pipx", "latest")
        mise.use_mise_versions(["meson", "ninja"])

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=mise.name))
        build.add_input(local_layer())
        build.add(run("mkdir /build"))
        if cmake:
            build.add(run("cmake -B /build -GNinja /app"), run("cmake --build /build"))
        else:
            build.add(run("meson setup /build"), run("meson compile -C /build"))

        ctx.deploy.start_command = f"/build/{ctx.source.root.name}"
        ctx.deploy.inputs.append(Layer(step=build.name, include=["/build/"]))
