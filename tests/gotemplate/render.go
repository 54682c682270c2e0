// Renders a Go text/template against JSON data, as Argo CD's and Argo Rollouts'
// notification controllers do (text/template over the object's unstructured JSON).
// Test helper only (tests/test_notification_templates.py): reads {"template": ...,
// "data": ...} on stdin, writes the output on stdout, exits 1 on a parse or execution
// error. Only the standard library: the few sprig functions the templates use are
// mapped to their strings-package equivalents below.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"text/template"
)

func main() {
	var input struct {
		Template string                 `json:"template"`
		Data     map[string]interface{} `json:"data"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintln(os.Stderr, "input:", err)
		os.Exit(2)
	}
	funcs := template.FuncMap{
		// sprig's trimSuffix(suffix, s): strings.TrimSuffix(s, suffix).
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		// sprig's replace(old, new, src): strings.Replace(src, old, new, -1).
		"replace": func(old, new, src string) string { return strings.Replace(src, old, new, -1) },
	}
	tmpl, err := template.New("message").Funcs(funcs).Parse(input.Template)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parse:", err)
		os.Exit(1)
	}
	if err := tmpl.Execute(os.Stdout, input.Data); err != nil {
		fmt.Fprintln(os.Stderr, "execute:", err)
		os.Exit(1)
	}
}
