"""C and C++ apps built with CMake or Meson and Ninja into /build."""

from __future__ import annotations

from starforge_dag.railpack.providers.base import Context, ProviderPlan, StepLayoutProvider, build_layer, sh


class CppProvider(StepLayoutProvider):
    """Apps with CMakeLists.txt or meson.build."""

    name = "cpp"
    looked_for = "CMakeLists.txt or meson.build"

    def detect_app(self, ctx: Context) -> bool:
        """A CMake or Meson project at the root."""
        return ctx.app.has_any("CMakeLists.txt", "meson.build")

    def start_command_help(self) -> str:
        """C/C++ apps run the executable named after the app directory."""
        return "name the executable target after the app's root directory"

    def plan_app(self, ctx: Context) -> ProviderPlan:
        """Configure and build into /build; run the executable named after the root directory."""
        cmake = ctx.app.has_file("CMakeLists.txt")
        tool = "cmake" if cmake else "meson"
        ctx.metadata["buildSystem"] = tool
        plan = ProviderPlan(
            packages={
                tool: ctx.resolve(tool, "latest", ctx.mise_version(tool)),
                "ninja": ctx.resolve("ninja", "latest", ctx.mise_version("ninja")),
            },
            runtime_packages=False,
            build_apt=["build-essential"],
        )
        if cmake:
            plan.build = [sh("cmake -B /build -G Ninja /app"), sh("cmake --build /build")]
        else:
            plan.build = [sh("meson setup /build"), sh("meson compile -C /build")]
        plan.start_command = f"/build/{ctx.app.root.name}"
        plan.deploy_inputs = [build_layer("/build")]
        return plan
