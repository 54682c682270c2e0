// nats-server v2.10.10: the JetStream version the EventBus names by default
// (components.config.EventBusSettings.version), built from the published module
// (`make tools`, components/toolchain.py).
module release-pipeline.local/tools/nats-server

go 1.26

require (
	github.com/klauspost/compress v1.17.5 // indirect
	github.com/minio/highwayhash v1.0.2 // indirect
	github.com/nats-io/jwt/v2 v2.5.3 // indirect
	github.com/nats-io/nats-server/v2 v2.10.10 // indirect
	github.com/nats-io/nkeys v0.4.7 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	go.uber.org/automaxprocs v1.5.3 // indirect
	golang.org/x/crypto v0.18.0 // indirect
	golang.org/x/sys v0.16.0 // indirect
	golang.org/x/time v0.5.0 // indirect
)

tool github.com/nats-io/nats-server/v2
