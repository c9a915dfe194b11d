"""Ruby apps: Bundler at the version Gemfile.lock was bundled with, Rails assets and bootsnap, Rack and rake."""

from __future__ import annotations

import re

from starforge_dag.railpack.context import CommandStepBuilder, GenerateContext, MiseStepBuilder, copy, local_layer, run
from starforge_dag.railpack.plan import Layer
from starforge_dag.railpack.providers.base import BaseProvider
from starforge_dag.railpack.providers.node import NodeProvider
from starforge_dag.railpack.semver import extract_semver, parse_semver

DEFAULT_RUBY_VERSION = "3.4"
GEM_HOME = "/usr/local/bundle"
RUBY_VARIABLES = {
    "BUNDLE_GEMFILE": "/app/Gemfile",
    "GEM_PATH": GEM_HOME,
    "GEM_HOME": GEM_HOME,
    "MALLOC_ARENA_MAX": "2",
    "LD_PRELOAD": "libjemalloc.so.2",
}
# The Gemfile's own `ruby '…'` line is left to mise (it reads the Gemfile as an idiomatic version file);
# Gemfile.lock's RUBY VERSION section is read here.
_LOCK_RUBY = re.compile(r"ruby ((?:0|[1-9]\d*)\.(?:0|[1-9]\d*)\.(?:0|[1-9]\d*))[^>]")
# Gems whose native extensions need a system library in the runtime image (matched as substrings, as Railpack does).
RUNTIME_LIBS = (
    ("pg", ["libpq-dev"]),
    ("mysql", ["default-libmysqlclient-dev"]),
    ("magick", ["libmagickwand-dev"]),
    ("vips", ["libvips-dev"]),
    ("charlock_holmes", ["libicu-dev", "libxml2-dev", "libxslt-dev"]),
)


class RubyProvider(BaseProvider):
    """Apps with a Gemfile."""

    name = "ruby"
    looked_for = "Gemfile"

    def detect(self, ctx: GenerateContext) -> bool:
        """A Gemfile at the root."""
        return ctx.source.has_file("Gemfile")

    def start_command_help(self) -> str:
        """Ruby's start commands."""
        return (
            "Railpack starts Rails apps with `rails server`, apps with config/environment.rb and a script directory "
            "with script/server, Rack apps (config.ru) with rackup, and otherwise runs the Rakefile's default task."
        )

    def plan(self, ctx: GenerateContext) -> None:
        """mise, install (bundler, gems, bootsnap), Node steps when there is a package.json, build, deploy."""
        mise = ctx.mise
        self._install_mise_packages(ctx, mise)

        install = ctx.new_command_step("install")
        install.add_input(Layer(step=mise.name))
        install_outputs = self._install(ctx, install)
        ctx.set_metadata("rubyRails", self._uses_rails(ctx))
        ctx.set_metadata("rubyAssetPipeline", self._uses_asset_pipeline(ctx))
        ctx.set_metadata("rubyBootsnap", self._uses(ctx, "bootsnap"))

        node = NodeProvider()
        node_detected = node.detect(ctx)
        if node_detected or self._uses(ctx, "execjs"):
            node.install_mise_packages(ctx, mise)
        build_node = prune_node = None
        if node_detected:
            node.initialize(ctx)
            node.install_mise_packages(ctx, mise)
            install_node = ctx.new_command_step("install:node")
            install_node.add_input(Layer(step=mise.name))
            node.install_node_deps(ctx, install_node)
            prune_node = ctx.new_command_step("prune:node")
            prune_node.add_input(Layer(step=install_node.name))
            node.prune_node_deps(ctx, prune_node)
            build_node = ctx.new_command_step("build:node")
            build_node.add_input(Layer(step=install.name))
            build_node.add_input(Layer(step=install_node.name, include=[".", *mise.output_paths()]))
            node.build_node(ctx, build_node)

        build = ctx.new_command_step("build")
        build.add_input(Layer(step=install.name))
        build_outputs = self._build(ctx, build)

        ctx.deploy.start_command = self._start_command(ctx)
        ctx.deploy.variables.update(RUBY_VARIABLES)
        self._runtime_deps(ctx)
        ctx.deploy.inputs += [
            mise.layer(),
            Layer(step=install.name, include=install_outputs),
            Layer(step=build.name, include=build_outputs),
        ]
        if build_node is not None and prune_node is not None:
            ctx.deploy.inputs += [
                Layer(step=prune_node.name, include=["/app/node_modules"]),
                Layer(step=build_node.name, include=["."], exclude=["node_modules", ".yarn"]),
            ]

    def _install_mise_packages(self, ctx: GenerateContext, mise: MiseStepBuilder) -> None:
        ruby = mise.default("ruby", DEFAULT_RUBY_VERSION)
        mise.variables["RUBY_CONFIGURE_OPTS"] = "--disable-install-doc"
        if lock_version := _lockfile_ruby_version(ctx):
            mise.version(ruby, lock_version, "Gemfile")
        mise.use_mise_versions(["ruby"])
        if env_version := ctx.env.railpack("RUBY_VERSION"):
            mise.version(ruby, env_version, "RAILPACK_RUBY_VERSION")
        mise.add_apt_package("libyaml-dev")
        mise.add_apt_package("libjemalloc-dev")
        requested = ctx.requests.get("ruby")
        semver = parse_semver(extract_semver(requested.version if requested and requested.version else ""))
        # YJIT (Ruby 3.2 and later) is built with rustc.
        if semver and semver[0] >= 3 and semver[1] > 1:
            mise.add_apt_package("rustc")
            mise.add_apt_package("cargo")

    def _install(self, ctx: GenerateContext, install: CommandStepBuilder) -> list[str]:
        install.secrets = []
        install.use_secrets_with_prefixes("RUBY", "GEM", "BUNDLE")
        install.variables.update(RUBY_VARIABLES)
        install.add(run(f"gem install -N {_bundler(ctx)}"), copy("Gemfile"), copy("Gemfile.lock"))
        install.add(*(copy(p) for p in _local_gem_paths(ctx)))
        install.add(run("bundle install"))
        if self._uses(ctx, "bootsnap"):
            install.add(run("bundle exec bootsnap precompile --gemfile"))
        install.add_paths(GEM_HOME)
        return [GEM_HOME]

    def _build(self, ctx: GenerateContext, build: CommandStepBuilder) -> list[str]:
        build.secrets = []
        build.use_secrets_with_prefixes(
            "RAILS", "BUNDLE", "BOOTSNAP", "SPROCKETS", "WEBPACKER", "ASSET", "DISABLE_SPRING"
        )
        build.variables.update(RUBY_VARIABLES)
        build.add_input(local_layer())
        outputs = ["/app"]
        rails = self._uses_rails(ctx)
        # API-only Rails apps have no asset pipeline gem and nothing to precompile.
        if rails and self._uses_asset_pipeline(ctx):
            build.add(run("bundle exec rake assets:precompile"))
        if rails and self._uses(ctx, "bootsnap"):
            build.add(run("bundle exec bootsnap precompile app/ lib/"))
            outputs.append("lib/")
        return outputs

    def _runtime_deps(self, ctx: GenerateContext) -> None:
        packages = ["libyaml-dev", "libjemalloc2"]
        for gem, libs in RUNTIME_LIBS:
            if self._uses(ctx, gem):
                packages += libs
        ctx.deploy.apt_packages += packages

    def _start_command(self, ctx: GenerateContext) -> str:
        source = ctx.source
        if self._uses_rails(ctx):
            if source.has_file("rails"):
                return "bundle exec rails server -b 0.0.0.0 -p ${PORT:-3000}"
            if not source.has_file("bin/rails"):
                ctx.warn("bin/rails not found; run `bundle binstubs railties` to avoid start-up problems")
            return "bundle exec bin/rails server -b 0.0.0.0 -p ${PORT:-3000} -e $RAILS_ENV"
        if source.has_file("config/environment.rb") and source.has_match("script"):
            return "bundle exec ruby script/server -b 0.0.0.0 -p ${PORT:-3000}"
        if source.has_file("config.ru"):
            return "bundle exec rackup config.ru -o 0.0.0.0 -p ${PORT:-3000}"
        if source.has_file("Rakefile"):
            return "bundle exec rake"
        return ""

    def _uses_rails(self, ctx: GenerateContext) -> bool:
        return "Rails::Application" in (ctx.source.read_text("config/application.rb") or "")

    def _uses_asset_pipeline(self, ctx: GenerateContext) -> bool:
        return self._uses(ctx, "sprockets") or self._uses(ctx, "propshaft")

    def _uses(self, ctx: GenerateContext, gem: str) -> bool:
        return any(gem in (ctx.source.read_text(f) or "") for f in ("Gemfile", "Gemfile.lock"))


def _lockfile_ruby_version(ctx: GenerateContext) -> str:
    match = _LOCK_RUBY.search(ctx.source.read_text("Gemfile.lock") or "")
    return match.group(1) if match else ""


def _bundler(ctx: GenerateContext) -> str:
    """`bundler:X` for the version after BUNDLED WITH in Gemfile.lock, else plain `bundler`."""
    lines = (ctx.source.read_text("Gemfile.lock") or "").splitlines()
    for i, line in enumerate(lines):
        if "BUNDLED WITH" in line:
            return f"bundler:{lines[i + 1].strip()}" if i + 1 < len(lines) else "bundler"
    return "bundler"


def _local_gem_paths(ctx: GenerateContext) -> list[str]:
    """Directories named by `path:` in the Gemfile, which bundle install needs before the source is copied."""
    paths = []
    for line in (ctx.source.read_text("Gemfile") or "").split("\n"):
        if "path:" in line:
            paths.append(line.split("path:")[1].strip().strip('"'))
    return paths
