package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/argoproj/argo-events/pkg/apis/events/v1alpha1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

const eventsAPIVersion = "argoproj.io/v1alpha1"

// objectRef names one object in findings and results.
type objectRef struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
}

func (r objectRef) key() string { return r.Kind + "/" + r.Namespace + "/" + r.Name }

// manifests holds the Argo Events objects of one file, decoded into upstream's types.
// Objects that do not decode are kept as findings, not dropped silently.
type manifests struct {
	sensors      []*v1alpha1.Sensor
	eventSources []*v1alpha1.EventSource
	eventBuses   []*v1alpha1.EventBus
	decodeErrors []finding
}

type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// loadManifests reads a multi-document YAML (or JSON) file. An unreadable file or a
// document that is not YAML is a usage error; an Argo Events object that does not decode
// into its upstream type (wrong type, unknown field) is a finding.
func loadManifests(path string) (*manifests, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, usagef("cannot read manifests %s: %v", path, err)
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	out := &manifests{}
	for index := 0; ; index++ {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, usagef("%s: document %d: %v", path, index, err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		// YAMLToJSONStrict also refuses a key given twice (the API server would too).
		data, err := yaml.YAMLToJSONStrict(doc)
		if err != nil {
			return nil, usagef("%s: document %d is not valid YAML: %v", path, index, err)
		}
		if string(data) == "null" {
			continue
		}
		var head header
		if err := json.Unmarshal(data, &head); err != nil {
			return nil, usagef("%s: document %d is not an object: %v", path, index, err)
		}
		if head.APIVersion != eventsAPIVersion {
			continue
		}
		ref := objectRef{Kind: head.Kind, Namespace: head.Metadata.Namespace, Name: head.Metadata.Name}
		switch head.Kind {
		case "Sensor":
			obj := &v1alpha1.Sensor{}
			if out.decode(ref, data, obj) {
				out.sensors = append(out.sensors, obj)
			}
		case "EventSource":
			obj := &v1alpha1.EventSource{}
			if out.decode(ref, data, obj) {
				out.eventSources = append(out.eventSources, obj)
			}
		case "EventBus":
			obj := &v1alpha1.EventBus{}
			if out.decode(ref, data, obj) {
				out.eventBuses = append(out.eventBuses, obj)
			}
		}
	}
	sort.Slice(out.sensors, func(i, j int) bool {
		return out.sensors[i].Namespace+"/"+out.sensors[i].Name < out.sensors[j].Namespace+"/"+out.sensors[j].Name
	})
	return out, nil
}

// decode is strict: an unknown field is a finding. The CRDs keep unknown fields
// (x-kubernetes-preserve-unknown-fields), so the controller would silently ignore one:
// a misspelt key would be a setting that does nothing.
func (m *manifests) decode(ref objectRef, data []byte, into any) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(into); err != nil {
		m.decodeErrors = append(m.decodeErrors, finding{
			objectRef: ref, Check: "decode",
			Message: fmt.Sprintf("does not decode into argo-events %s: %v", ref.Kind, err),
		})
		return false
	}
	return true
}

func (m *manifests) eventBus(namespace, name string) *v1alpha1.EventBus {
	if name == "" {
		name = v1alpha1.DefaultEventBusName
	}
	for _, bus := range m.eventBuses {
		if bus.Namespace == namespace && bus.Name == name {
			return bus
		}
	}
	return nil
}
