package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	"github.com/argoproj/argo-events/pkg/eventsources"
	"github.com/argoproj/argo-events/pkg/eventsources/events"
	"github.com/argoproj/argo-events/pkg/sensors/dependencies"
	"github.com/argoproj/argo-events/pkg/sensors/triggers"
	standardk8s "github.com/argoproj/argo-events/pkg/sensors/triggers/standard-k8s"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	gh "github.com/google/go-github/v50/github"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
)

// The label standard-k8s.go sets to the time of the create; fixed here for a
// deterministic output.
const actionTimestampLabel = "events.argoproj.io/action-timestamp"

type simulateOptions struct {
	manifests   string
	eventName   string
	eventSource string
	payload     string
	headers     http.Header
}

func parseSimulateArgs(args []string) (*simulateOptions, error) {
	opts := &simulateOptions{headers: http.Header{}}
	for i := 0; i < len(args); i++ {
		flag := args[i]
		if i+1 >= len(args) {
			return nil, usagef("%s needs a value", flag)
		}
		value := args[i+1]
		i++
		switch flag {
		case "--manifests":
			opts.manifests = value
		case "--event":
			opts.eventName = value
		case "--event-source":
			opts.eventSource = value
		case "--payload":
			opts.payload = value
		case "--header":
			name, val, ok := strings.Cut(value, "=")
			if !ok || strings.TrimSpace(name) == "" {
				return nil, usagef("--header %q: expected NAME=VALUE", value)
			}
			opts.headers.Add(name, val)
		default:
			return nil, usagef("unknown option %q (--manifests, --event, --event-source, --payload, --header)", flag)
		}
	}
	for flag, value := range map[string]string{"--manifests": opts.manifests, "--event": opts.eventName,
		"--payload": opts.payload} {
		if value == "" {
			return nil, usagef("%s is required", flag)
		}
	}
	return opts, nil
}

// dependencyResult says what one dependency made of the delivery.
type dependencyResult struct {
	Received bool   `json:"received"`
	Passed   bool   `json:"passed"`
	Error    string `json:"error,omitempty"`
}

type sensorResult struct {
	Sensor       string                      `json:"sensor"`
	Namespace    string                      `json:"namespace"`
	Fired        bool                        `json:"fired"`
	Created      []map[string]any            `json:"created"`
	Dependencies map[string]dependencyResult `json:"dependencies"`
	Errors       []string                    `json:"errors"`
}

func simulateFile(opts *simulateOptions) ([]sensorResult, error) {
	m, err := loadManifests(opts.manifests)
	if err != nil {
		return nil, err
	}
	if len(m.decodeErrors) > 0 {
		f := m.decodeErrors[0]
		return nil, usagef("%s %s/%s: %s", f.Kind, f.Namespace, f.Name, f.Message)
	}
	body, err := os.ReadFile(opts.payload)
	if err != nil {
		return nil, usagef("cannot read payload %s: %v", opts.payload, err)
	}
	source, github, err := findGithubEvent(m, opts.eventSource, opts.eventName)
	if err != nil {
		return nil, err
	}
	event, err := githubCloudEvent(source, opts.eventName, github, body, opts.headers)
	if err != nil {
		return nil, err
	}
	results := []sensorResult{}
	for _, s := range m.sensors {
		results = append(results, runSensor(s, source, event))
	}
	return results, nil
}

// eventNames lists an EventSource's events as upstream enumerates them.
func eventNames(source *v1alpha1.EventSource) []string {
	servers, _ := eventsources.GetEventingServers(source, nil)
	var names []string
	for _, list := range servers {
		for _, server := range list {
			names = append(names, server.GetEventName())
		}
	}
	sort.Strings(names)
	return names
}

func findGithubEvent(m *manifests, sourceName, eventName string) (*v1alpha1.EventSource, *v1alpha1.GithubEventSource,
	error) {
	var found []*v1alpha1.EventSource
	var available []string
	for _, source := range m.eventSources {
		if sourceName != "" && source.Name != sourceName {
			continue
		}
		for name := range source.Spec.Github {
			available = append(available, source.Name+"/"+name)
		}
		if _, ok := source.Spec.Github[eventName]; ok {
			found = append(found, source)
		}
	}
	sort.Strings(available)
	switch len(found) {
	case 0:
		return nil, nil, usagef("no github EventSource in the manifests has the event %q (available: %s)", eventName,
			strings.Join(available, ", "))
	case 1:
		github := found[0].Spec.Github[eventName]
		return found[0], &github, nil
	default:
		return nil, nil, usagef("more than one EventSource has the github event %q: give --event-source", eventName)
	}
}

// githubCloudEvent builds the message the github EventSource publishes for one
// delivery, as v1.9.10 does:
//   - pkg/eventsources/sources/github/start.go parseValidateRequest (unexported, so its
//     few lines are repeated here): go-github's ValidatePayload reads the body (JSON or
//     form-encoded; no secret here, so no signature check), the JSON is decoded into a
//     map and re-encoded with the X-GitHub-Event and X-GitHub-Delivery header values
//     added as body keys;
//   - HandleRoute wraps it as events.GithubEventData{Headers, Body, Metadata};
//   - pkg/eventsources/eventing.go makes the CloudEvent (type github, source the
//     EventSource, subject the event name, data application/json), which travels
//     through the bus as JSON and is decoded by the Sensor.
func githubCloudEvent(source *v1alpha1.EventSource, eventName string, github *v1alpha1.GithubEventSource, body []byte,
	headers http.Header) (*cloudevents.Event, error) {
	request, err := http.NewRequest(http.MethodPost, "http://eventsource"+github.Webhook.Endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, usagef("cannot build the request: %v", err)
	}
	request.Header = headers.Clone()
	if request.Header.Get("Content-Type") == "" {
		request.Header.Set("Content-Type", "application/json")
	}
	if request.Header.Get("X-GitHub-Event") == "" {
		return nil, usagef("the delivery has no X-GitHub-Event header: GitHub always sends one " +
			"(give --header X-GitHub-Event=pull_request, for example)")
	}
	payloadBytes, err := gh.ValidatePayload(request, nil)
	if err != nil {
		return nil, usagef("the EventSource would refuse the delivery: %v", err)
	}
	payload := make(map[string]interface{})
	if err := json.Unmarshal(payloadBytes, &payload); err != nil {
		return nil, usagef("the EventSource would refuse the delivery: the payload is not a JSON object: %v", err)
	}
	for _, h := range []string{"X-GitHub-Event", "X-GitHub-Delivery"} {
		payload[h] = request.Header.Get(h)
	}
	reencoded, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(&events.GithubEventData{
		Headers:  request.Header,
		Body:     (*json.RawMessage)(&reencoded),
		Metadata: github.Metadata,
	})
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(data) // upstream uses a random UUID; a digest keeps the output stable
	event := cloudevents.NewEvent()
	event.SetID(hex.EncodeToString(digest[:16]))
	event.SetType(string(v1alpha1.GithubEvent))
	event.SetSource(source.Name)
	event.SetSubject(eventName)
	event.SetTime(time.Now())
	if err := event.SetData(cloudevents.ApplicationJSON, data); err != nil {
		return nil, err
	}
	wire, err := json.Marshal(event)
	if err != nil {
		return nil, err
	}
	received := &cloudevents.Event{}
	if err := json.Unmarshal(wire, received); err != nil {
		return nil, err
	}
	return received, nil
}

// convertEvent is pkg/sensors/listener.go convertEvent (unexported there).
func convertEvent(event cloudevents.Event) *v1alpha1.Event {
	return &v1alpha1.Event{
		Context: &v1alpha1.EventContext{
			DataContentType: event.Context.GetDataContentType(),
			Source:          event.Context.GetSource(),
			SpecVersion:     event.Context.GetSpecVersion(),
			Type:            event.Context.GetType(),
			Time:            metav1.Time{Time: event.Context.GetTime()},
			ID:              event.Context.GetID(),
			Subject:         event.Context.GetSubject(),
		},
		Data: event.Data(),
	}
}

// runSensor delivers one event to every trigger of a Sensor, as the jetstream bus
// (pkg/eventbus/jetstream/sensor/trigger_conn.go processMsg/processDependency) and
// listener.go do with an empty store of earlier events: per dependency of the trigger
// that listens to this source and event, the transform, then the filter; an OR-only
// expression fires once per passing dependency, an expression with && fires when it
// holds with the dependencies passed so far.
func runSensor(s *v1alpha1.Sensor, source *v1alpha1.EventSource, event *cloudevents.Event) sensorResult {
	result := sensorResult{Sensor: s.Name, Namespace: s.Namespace, Created: []map[string]any{},
		Dependencies: map[string]dependencyResult{}, Errors: []string{}}
	if s.Namespace != source.Namespace {
		return result
	}
	passed := map[string]*cloudevents.Event{}
	for _, dep := range s.Spec.Dependencies {
		if dep.EventSourceName != event.Source() || dep.EventName != event.Subject() {
			continue
		}
		outcome := dependencyResult{Received: true}
		transformed := event
		if dep.Transform != nil {
			var err error
			transformed, err = dependencies.ApplyTransform(event, dep.Transform)
			if err != nil {
				outcome.Error = fmt.Sprintf("failed to apply event transformation: %v", err)
				result.Dependencies[dep.Name] = outcome
				continue
			}
		}
		ok := true
		if dep.Filters != nil {
			var err error
			ok, err = dependencies.Filter(convertEvent(*transformed), dep.Filters, dep.FiltersLogicalOperator)
			if err != nil {
				outcome.Error = err.Error()
			}
		}
		outcome.Passed = ok
		result.Dependencies[dep.Name] = outcome
		if ok {
			passed[dep.Name] = transformed
		}
	}
	for _, trigger := range s.Spec.Triggers {
		for _, fired := range firings(s, trigger, passed, &result) {
			result.Fired = true
			created, err := runTrigger(s, trigger, fired)
			if err != nil {
				result.Errors = append(result.Errors, fmt.Sprintf("trigger %s: %v", triggerName(trigger), err))
				continue
			}
			result.Created = append(result.Created, created...)
		}
	}
	return result
}

// firings: the event sets a trigger's action receives for this delivery.
func firings(s *v1alpha1.Sensor, trigger v1alpha1.Trigger, passed map[string]*cloudevents.Event,
	result *sensorResult) []map[string]*cloudevents.Event {
	expression, err := dependencyExpression(s, trigger)
	if err != nil {
		result.Errors = append(result.Errors, fmt.Sprintf("trigger %s: failed to get dependency expression: %v",
			triggerName(trigger), err))
		return nil
	}
	ev, err := evaluable(expression)
	if err != nil {
		result.Errors = append(result.Errors, fmt.Sprintf("trigger %s: %v", triggerName(trigger), err))
		return nil
	}
	depNames := ev.Vars()
	sort.Strings(depNames)
	var out []map[string]*cloudevents.Event
	if !strings.Contains(expression, "&") {
		for _, name := range depNames {
			if event, ok := passed[name]; ok {
				out = append(out, map[string]*cloudevents.Event{name: event})
			}
		}
		return out
	}
	parameters := map[string]interface{}{}
	for _, name := range depNames {
		parameters[name] = false
	}
	saved := map[string]*cloudevents.Event{}
	for _, name := range depNames {
		event, ok := passed[name]
		if !ok {
			continue
		}
		parameters[name] = true
		saved[name] = event
		holds, err := ev.Evaluate(parameters)
		if err != nil {
			result.Errors = append(result.Errors, fmt.Sprintf("trigger %s: failed to evaluate dependency expression: %v",
				triggerName(trigger), err))
			return out
		}
		if holds == true {
			out = append(out, saved)
			saved = map[string]*cloudevents.Event{}
			for key := range parameters {
				parameters[key] = false
			}
		}
	}
	return out
}

// runTrigger is listener.go triggerActions/triggerOne for a k8s trigger: template
// parameters, then standard-k8s FetchResource, ApplyResourceParameters and Execute,
// the latter against a fake dynamic client; what it creates is the result.
func runTrigger(s *v1alpha1.Sensor, trigger v1alpha1.Trigger, fired map[string]*cloudevents.Event) ([]map[string]any,
	error) {
	eventsMapping := map[string]*v1alpha1.Event{}
	for name, event := range fired {
		eventsMapping[name] = convertEvent(*event)
	}
	trigger = *trigger.DeepCopy()
	if err := triggers.ApplyTemplateParameters(eventsMapping, &trigger); err != nil {
		return nil, fmt.Errorf("failed to apply template parameters, %w", err)
	}
	if trigger.Template == nil || trigger.Template.K8s == nil {
		return nil, fmt.Errorf("only k8s triggers are simulated")
	}
	ctx := context.Background()
	probe, err := triggers.FetchKubernetesResource(trigger.Template.K8s.Source)
	if err != nil {
		return nil, err
	}
	gvr := triggers.GetGroupVersionResource(probe)
	client := dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{gvr: probe.GetKind() + "List"})
	k8sTrigger := standardk8s.NewStandardK8sTrigger(nil, client, s, &trigger, zap.NewNop().Sugar())
	obj, err := k8sTrigger.FetchResource(ctx)
	if err != nil {
		return nil, err
	}
	updated, err := k8sTrigger.ApplyResourceParameters(eventsMapping, obj)
	if err != nil {
		return nil, err
	}
	created, err := k8sTrigger.Execute(ctx, eventsMapping, updated)
	if err != nil {
		return nil, fmt.Errorf("failed to execute trigger, %w", err)
	}
	u, ok := created.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("the trigger returned %T", created)
	}
	labels := u.GetLabels()
	if _, ok := labels[actionTimestampLabel]; ok {
		labels[actionTimestampLabel] = "0"
		u.SetLabels(labels)
	}
	return []map[string]any{u.Object}, nil
}
