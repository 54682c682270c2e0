package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/Knetic/govaluate"
	"github.com/antonmedv/expr"
	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/reconciler/eventbus"
	"github.com/argoproj/argo-events/pkg/reconciler/eventsource"
	"github.com/argoproj/argo-events/pkg/reconciler/sensor"
)

// finding is one problem of one object. Check says whose rule it is:
//   - "decode": the object does not decode into argo-events' Go type (strictly);
//   - "controller": the controller's own validation (ValidateSensor, ValidateEventSource,
//     ValidateEventBus) or its EventBus lookup, which refuses to deploy the object;
//   - "sensor-startup": the Sensor pod's start (listener.go), which stops the trigger;
//   - "reference": a name that points nowhere, so the dependency or parameter can never
//     receive an event (upstream accepts it silently).
type finding struct {
	objectRef
	Check   string `json:"check"`
	Message string `json:"message"`
}

type validateReport struct {
	ArgoEvents string      `json:"argoEvents"`
	Checked    []objectRef `json:"checked"`
	Findings   []finding   `json:"findings"`
}

func validateFile(path string) (*validateReport, error) {
	m, err := loadManifests(path)
	if err != nil {
		return nil, err
	}
	report := &validateReport{ArgoEvents: argoEventsVersion(), Checked: []objectRef{}, Findings: validateAll(m)}
	for _, f := range m.decodeErrors {
		report.Checked = append(report.Checked, f.objectRef)
	}
	for _, bus := range m.eventBuses {
		report.Checked = append(report.Checked, objectRef{"EventBus", bus.Namespace, bus.Name})
	}
	for _, source := range m.eventSources {
		report.Checked = append(report.Checked, objectRef{"EventSource", source.Namespace, source.Name})
	}
	for _, s := range m.sensors {
		report.Checked = append(report.Checked, objectRef{"Sensor", s.Namespace, s.Name})
	}
	sort.Slice(report.Checked, func(i, j int) bool { return report.Checked[i].key() < report.Checked[j].key() })
	return report, nil
}

func validateAll(m *manifests) []finding {
	findings := append([]finding{}, m.decodeErrors...)
	add := func(ref objectRef, check, format string, args ...any) {
		findings = append(findings, finding{objectRef: ref, Check: check, Message: fmt.Sprintf(format, args...)})
	}
	for _, bus := range m.eventBuses {
		if err := eventbus.ValidateEventBus(bus.DeepCopy()); err != nil {
			add(objectRef{"EventBus", bus.Namespace, bus.Name}, "controller", "%v", err)
		}
	}
	for _, source := range m.eventSources {
		ref := objectRef{"EventSource", source.Namespace, source.Name}
		if err := eventsource.ValidateEventSource(source.DeepCopy()); err != nil {
			add(ref, "controller", "%v", err)
		}
		if m.eventBus(source.Namespace, source.Spec.EventBusName) == nil {
			add(ref, "controller", "eventbus %s not found", busName(source.Spec.EventBusName))
		}
	}
	for _, s := range m.sensors {
		ref := objectRef{"Sensor", s.Namespace, s.Name}
		bus := m.eventBus(s.Namespace, s.Spec.EventBusName)
		if bus == nil {
			// The controller stops here (pkg/reconciler/sensor/controller.go).
			add(ref, "controller", "eventbus %s not found", busName(s.Spec.EventBusName))
		} else if err := sensor.ValidateSensor(s.DeepCopy(), bus); err != nil {
			add(ref, "controller", "%v", err)
		}
		for _, msg := range sensorStartupProblems(s) {
			add(ref, "sensor-startup", "%s", msg)
		}
		for _, msg := range referenceProblems(m, s) {
			add(ref, "reference", "%s", msg)
		}
	}
	sort.SliceStable(findings, func(i, j int) bool { return findings[i].key() < findings[j].key() })
	return findings
}

func busName(name string) string {
	if name == "" {
		return v1alpha1.DefaultEventBusName
	}
	return name
}

// dependencyExpression is pkg/sensors/listener.go getDependencyExpression (v1.9.10),
// which is a method of an unexported context there: the trigger's conditions with
// group names translated, or all dependencies AND-ed. Copied, with the same libraries.
func dependencyExpression(s *v1alpha1.Sensor, trigger v1alpha1.Trigger) (string, error) {
	translate := func(originalExpr string, parameters map[string]string) (string, error) {
		originalExpr = strings.ReplaceAll(originalExpr, "&&", " + \"&&\" + ")
		originalExpr = strings.ReplaceAll(originalExpr, "||", " + \"||\" + ")
		originalExpr = strings.ReplaceAll(originalExpr, "-", "_")
		originalExpr = strings.ReplaceAll(originalExpr, "(", "\"(\"+")
		originalExpr = strings.ReplaceAll(originalExpr, ")", "+\")\"")

		program, err := expr.Compile(originalExpr, expr.Env(parameters))
		if err != nil {
			return "", err
		}
		result, err := expr.Run(program, parameters)
		if err != nil {
			return "", err
		}
		newExpr := fmt.Sprintf("%v", result)
		newExpr = strings.ReplaceAll(newExpr, "\"(\"", "(")
		newExpr = strings.ReplaceAll(newExpr, "\")\"", ")")
		return newExpr, nil
	}
	if trigger.Template != nil && trigger.Template.Conditions != "" {
		mapping := make(map[string]string)
		for _, dep := range s.Spec.Dependencies {
			mapping[strings.ReplaceAll(dep.Name, "-", "_")] = dep.Name
		}
		return translate(trigger.Template.Conditions, mapping)
	}
	deps := []string{}
	for _, dep := range s.Spec.Dependencies {
		deps = append(deps, dep.Name)
	}
	return strings.Join(deps, "&&"), nil
}

// evaluable is the govaluate expression listener.go and the jetstream bus build from it.
func evaluable(expression string) (*govaluate.EvaluableExpression, error) {
	return govaluate.NewEvaluableExpression(strings.ReplaceAll(expression, "-", "\\-"))
}

// sensorStartupProblems: what makes listener.go give up a trigger when the pod starts.
func sensorStartupProblems(s *v1alpha1.Sensor) []string {
	var problems []string
	known := map[string]bool{}
	for _, dep := range s.Spec.Dependencies {
		known[dep.Name] = true
	}
	for _, trigger := range s.Spec.Triggers {
		name := triggerName(trigger)
		expression, err := dependencyExpression(s, trigger)
		if err != nil {
			problems = append(problems, fmt.Sprintf("trigger %s: failed to get dependency expression: %v", name, err))
			continue
		}
		ev, err := evaluable(expression)
		if err != nil {
			problems = append(problems, fmt.Sprintf("trigger %s: failed to get new evaluable expression: %v", name, err))
			continue
		}
		for _, v := range ev.Vars() {
			if !known[v] {
				problems = append(problems, fmt.Sprintf(
					"trigger %s: Dependency expression and dependency list do not match, %s is not found", name, v))
			}
		}
	}
	return problems
}

func triggerName(trigger v1alpha1.Trigger) string {
	if trigger.Template == nil {
		return "<no template>"
	}
	return trigger.Template.Name
}

// referenceProblems: names that upstream accepts but that can never receive an event.
func referenceProblems(m *manifests, s *v1alpha1.Sensor) []string {
	var problems []string
	known := map[string]bool{}
	for _, dep := range s.Spec.Dependencies {
		known[dep.Name] = true
		if !m.hasEvent(s.Namespace, dep.EventSourceName, dep.EventName) {
			problems = append(problems, fmt.Sprintf(
				"dependency %s: no EventSource %s with event %s in namespace %s", dep.Name, dep.EventSourceName,
				dep.EventName, s.Namespace))
		}
	}
	for _, trigger := range s.Spec.Triggers {
		name := triggerName(trigger)
		check := func(where string, params []v1alpha1.TriggerParameter) {
			for i, p := range params {
				if p.Src != nil && p.Src.DependencyName != "" && !known[p.Src.DependencyName] {
					problems = append(problems, fmt.Sprintf(
						"trigger %s: %s parameter %d (dest %s) takes its value from dependency %s, which the Sensor "+
							"does not have", name, where, i, p.Dest, p.Src.DependencyName))
				}
			}
		}
		check("template", trigger.Parameters)
		if trigger.Template != nil && trigger.Template.K8s != nil {
			check("k8s", trigger.Template.K8s.Parameters)
		}
	}
	return problems
}

// hasEvent: an EventSource of that name in the namespace defines the event (any type).
func (m *manifests) hasEvent(namespace, sourceName, eventName string) bool {
	for _, source := range m.eventSources {
		if source.Namespace != namespace || source.Name != sourceName {
			continue
		}
		for _, name := range eventNames(source) {
			if name == eventName {
				return true
			}
		}
	}
	return false
}
