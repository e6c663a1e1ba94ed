package docker

// Exited is exited, for the tests of package docker_test.
var Exited = (*Mesh).exited
