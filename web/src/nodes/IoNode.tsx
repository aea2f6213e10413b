// Inside a subgraph: the panel of its inputs (left; each is a socket to wire into inner nodes) or
// of its outputs (right). The empty "+" socket adds an input or output named after what it is
// wired to.
import type { NodeProps } from "@xyflow/react";
import { memo } from "react";
import { ADD_SOCKET, type IoNode as IoNodeType } from "../graphModel";
import { Socket } from "./GraphNode";

function IoView({ data, selected }: NodeProps<IoNodeType>) {
  const kind = data.side === "in" ? "out" : "in";
  return (
    <div className={`lg-node lg-io ${data.side}${selected ? " selected" : ""}`} data-testid={`subgraph-${data.side === "in" ? "inputs" : "outputs"}`}>
      <div className="lg-node-header">{data.side === "in" ? "Subgraph inputs" : "Subgraph outputs"}</div>
      <div className="lg-node-body">
        {data.items.map((item) => (
          <div className="socket-row" key={item.name}>
            <div className={`socket-label ${kind}`} data-testid={`io-${item.name}`} title={item.type}>
              {kind === "in" && <Socket kind="in" name={item.name} type={item.type} />}
              {item.name}
              {kind === "out" && <Socket kind="out" name={item.name} type={item.type} />}
            </div>
          </div>
        ))}
        <div className="socket-row">
          <div className={`socket-label ${kind} add`} title={data.side === "in" ? "Wire to an input to add a subgraph input" : "Wire an output here to add a subgraph output"}>
            {kind === "in" && <Socket kind="in" name={ADD_SOCKET} type="*" />}+
            {kind === "out" && <Socket kind="out" name={ADD_SOCKET} type="*" />}
          </div>
        </div>
      </div>
    </div>
  );
}

export const IoNode = memo(IoView);
