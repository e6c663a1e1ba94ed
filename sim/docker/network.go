package docker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// netInfo is a run's network: its name, its subnet and this host's address on it.
type netInfo struct {
	name, id string
	prefix   netip.Prefix
	host     netip.Addr // the bridge's address: where the control plane listens
}

// createNetwork makes a bridge network of the run's own with a /24 of
// 172.30.0.0/16 picked at random (a subnet must be given for pods to keep
// their address across restarts), trying others when one is taken.
func createNetwork(ctx context.Context, cli *testcontainers.DockerClient, name string, labels map[string]string) (netInfo, error) {
	var last error
	for try := 0; try < 16; try++ {
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, 30, byte(mrand.IntN(256)), 0}), 24)
		host := prefix.Addr().Next()
		res, err := cli.NetworkCreate(ctx, name, client.NetworkCreateOptions{
			Driver: "bridge", Labels: labels,
			IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: prefix, Gateway: host}}},
		})
		if err != nil {
			last = err
			if strings.Contains(err.Error(), "overlap") {
				continue
			}
			return netInfo{}, fmt.Errorf("create network %s: %w", name, err)
		}
		return netInfo{name: name, id: res.ID, prefix: prefix, host: host}, nil
	}
	return netInfo{}, fmt.Errorf("create network %s: no free /24 in 172.30.0.0/16: %w", name, last)
}

// allocator hands out the network's addresses from .2 on (.1 is this host).
func (n netInfo) allocator() func() (netip.Addr, error) {
	next := n.host
	return func() (netip.Addr, error) {
		next = next.Next()
		if !n.prefix.Contains(next) || next.As4()[3] == 255 {
			return netip.Addr{}, fmt.Errorf("more than 253 pods in one mesh")
		}
		return next, nil
	}
}

func newRunID() (string, error) {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
