{{/* Labels of every object of the chart. */}}
{{- define "cnilab.labels" -}}
app.kubernetes.io/name: cnilab-agent
app.kubernetes.io/part-of: cnilab
{{- end }}

{{/*
cnilab.checkCIDR fails rendering unless the value at key is an IPv4 network
(address/prefix), naming the key and the value: values.schema.json cannot
say which form it wants in its own message.
*/}}
{{- define "cnilab.checkCIDR" -}}
{{- $key := index . 0 -}}
{{- $value := index . 1 -}}
{{- if not (regexMatch `^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$` $value) -}}
{{- fail (printf "%s %q is not an IPv4 network: want address/prefix, such as 10.244.0.0/16" $key $value) -}}
{{- end -}}
{{- end }}
