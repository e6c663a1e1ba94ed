package kind

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodNamesFollowTheRegistryAndStay(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	pod := func(name, app, ver string, age int) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app, "version": ver},
			CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))}}
	}
	keys := func(m map[string]*corev1.Pod) map[string]string {
		out := map[string]string{}
		for k, p := range m {
			out[k] = p.Name
		}
		return out
	}
	var n podNames
	// Ordinals follow creation, per Deployment.
	got := n.assign([]corev1.Pod{pod("payment-v1-bbb", "payment", "v1", 2), pod("payment-v1-aaa", "payment", "v1", 1), pod("order-v1-x", "order", "v1", 5)})
	assert.Equal(t, map[string]string{"payment-v1-0": "payment-v1-aaa", "payment-v1-1": "payment-v1-bbb", "order-v1-0": "order-v1-x"}, keys(got))

	// payment-v1-0 is replaced: the survivor keeps its name, the new pod takes the free one.
	got = n.assign([]corev1.Pod{pod("payment-v1-bbb", "payment", "v1", 2), pod("payment-v1-ccc", "payment", "v1", 9), pod("order-v1-x", "order", "v1", 5)})
	assert.Equal(t, map[string]string{"payment-v1-0": "payment-v1-ccc", "payment-v1-1": "payment-v1-bbb", "order-v1-0": "order-v1-x"}, keys(got))

	// A terminating pod and a pod of no Deployment of ours are not named.
	gone := pod("payment-v1-ccc", "payment", "v1", 9)
	now := metav1.NewTime(t0)
	gone.DeletionTimestamp = &now
	got = n.assign([]corev1.Pod{pod("payment-v1-bbb", "payment", "v1", 2), gone, {ObjectMeta: metav1.ObjectMeta{Name: "stray"}}})
	assert.Equal(t, map[string]string{"payment-v1-1": "payment-v1-bbb"}, keys(got))
}
