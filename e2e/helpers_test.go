package e2e

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

var createOpts = metav1.CreateOptions{}
