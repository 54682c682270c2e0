// The Argo Workflows CLI `argo` (for `argo lint --offline`), pinned here; built by
// components/toolchain.py inside a writable copy of this module version taken from
// the Go module cache (with upstream's own go.mod and go.sum), because its `ui` package
// embeds ui/dist/app, which the published module does not contain: an empty placeholder
// is created there, as upstream's Makefile does when it builds without the UI.
// v4.0.5, not the chart's v4.0.6: the Go module proxy does not serve v4.0.6
// (components/versions.py ARGO_WORKFLOWS_CLI).
module release-pipeline.local/tools/argo

go 1.26

require github.com/argoproj/argo-workflows/v4 v4.0.5
