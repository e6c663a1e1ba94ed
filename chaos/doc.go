// Package chaos injects faults into a running mesh on a schedule and takes
// them off again, on every path.
//
// It is shaped like Toxiproxy's toxics and vegeta's lib: every fault type is
// a small value with one method, Inject, in a file of its own with its test
// beside it; a Schedule says when, a Selector says where, and a Runner plays
// a plan of Steps against a mesh while the load runs, recording each fault's
// window. Faults do not know the runtime: they ask an Injector, which each
// runtime implements (Local for the local runtime, on the hooks of
// runtime.FaultInjector and Toxiproxy's proxies; docker and kind can add
// theirs for the same fault types).
//
// The fault catalog:
//
//	mesh faults, pushed as xDS by editing the VirtualService:
//	  Delay, Abort               on a service, a version (subset) or a named route
//	network faults, on a workload's inbound side (from every caller or from one workload):
//	  Latency (with jitter), Bandwidth, Reset, Blackhole, SlowClose,
//	  Partition                  between two services, both directions
//	pod faults:
//	  Kill, Restart, Pause, AppErrors, AppLatency
//	control-plane faults:
//	  ControlPlaneOutage, ConfigPush
//	identity faults:
//	  Identity                   not injected as a step yet (ErrNotSupportedYet); bad certificates are the topology's cert
//
// Every Inject returns a Rollback; a Runner keeps the rollbacks of what is in
// place on a stack and runs them all when it stops, whether the plan ended,
// a step failed or the run was interrupted.
package chaos
