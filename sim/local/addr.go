package local

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
)

// subnet hands out loopback addresses from one /24 of 127.0.0.0/8, picked at
// random so that meshes started in parallel (tests, CI) do not collide; each
// pod gets its own address and so can bind Istio's fixed ports.
type subnet struct {
	base netip.Addr
	next int
}

// newSubnet finds a /24 whose first addresses nothing listens on.
func newSubnet() (*subnet, error) {
	for try := 0; try < 20; try++ {
		b := netip.AddrFrom4([4]byte{127, byte(64 + rand.IntN(160)), byte(rand.IntN(256)), 0})
		probe := netip.AddrFrom4([4]byte{127, b.As4()[1], b.As4()[2], 1})
		l, err := net.Listen("tcp", netip.AddrPortFrom(probe, 15090).String())
		if err != nil {
			continue
		}
		l.Close()
		return &subnet{base: b, next: 1}, nil
	}
	return nil, fmt.Errorf("no free loopback /24 found in 127.64.0.0/10")
}

func (s *subnet) alloc() (netip.Addr, error) {
	if s.next > 250 {
		return netip.Addr{}, fmt.Errorf("more than 250 pods in one mesh")
	}
	a := s.base.As4()
	a[3] = byte(s.next)
	s.next++
	return netip.AddrFrom4(a), nil
}
