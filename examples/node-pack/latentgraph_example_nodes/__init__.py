"""An example latentgraph node pack. Its node types are declared in `latentgraph_example_nodes.nodes`,
the module its entry point names."""
