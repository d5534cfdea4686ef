"""The local mesh behind `eventfn dev`: Knative Broker/Trigger semantics on one machine."""
