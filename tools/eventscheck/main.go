// Command eventscheck checks the project's Argo Events objects with Argo Events' own code.
//
// It is built against github.com/argoproj/argo-events at the version the argo-events
// chart deploys (see go.mod) and owns only the glue around upstream functions:
//
//	eventscheck validate MANIFESTS
//	    Every Sensor, EventSource and EventBus of a multi-document YAML file is decoded
//	    strictly and checked with the controllers' validation (ValidateSensor,
//	    ValidateEventSource, ValidateEventBus) plus the checks a Sensor pod makes when it
//	    starts (its dependency expression). Prints {"checked": [...], "findings": [...]}
//	    as JSON; exit 1 when there is a finding.
//
//	eventscheck simulate --manifests FILE --event NAME --payload FILE [--header K=V]...
//	    One GitHub delivery to the EventSource event NAME, run through every Sensor of the
//	    file with upstream's filter, transform, trigger-parameter and k8s-trigger code.
//	    Prints a JSON list [{"sensor", "namespace", "fired", "created", ...}].
//
//	eventscheck version
//	    The argo-events module version this binary was built with.
//
// Exit codes: 0 ok, 1 findings (validate), 2 unusable input (message on stderr).
// What it does not own: which objects the project renders (the Python program), and
// what the upstream functions decide.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
)

const argoEventsModule = "github.com/argoproj/argo-events"

// usageError is bad input: the message is printed and the exit code is 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	code, err := dispatch(args, stdout)
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(stderr, "eventscheck: %s\n", u.msg)
			return 2
		}
		fmt.Fprintf(stderr, "eventscheck: internal error: %v\n", err)
		return 3
	}
	return code
}

func dispatch(args []string, stdout io.Writer) (int, error) {
	if len(args) == 0 {
		return 0, usagef("usage: eventscheck validate MANIFESTS | simulate --manifests FILE --event NAME " +
			"--payload FILE [--header NAME=VALUE]... | version")
	}
	switch args[0] {
	case "validate":
		if len(args) != 2 {
			return 0, usagef("usage: eventscheck validate MANIFESTS")
		}
		report, err := validateFile(args[1])
		if err != nil {
			return 0, err
		}
		if err := writeJSON(stdout, report); err != nil {
			return 0, err
		}
		if len(report.Findings) > 0 {
			return 1, nil
		}
		return 0, nil
	case "simulate":
		opts, err := parseSimulateArgs(args[1:])
		if err != nil {
			return 0, err
		}
		results, err := simulateFile(opts)
		if err != nil {
			return 0, err
		}
		return 0, writeJSON(stdout, results)
	case "version":
		_, err := fmt.Fprintln(stdout, argoEventsVersion())
		return 0, err
	default:
		return 0, usagef("unknown command %q (validate, simulate, version)", args[0])
	}
}

func argoEventsVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	for _, dep := range info.Deps {
		if dep.Path == argoEventsModule {
			return dep.Version
		}
	}
	return "unknown"
}

func writeJSON(w io.Writer, value any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(value)
}
