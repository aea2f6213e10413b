// A reroute point: a dot that a wire passes through, to route it tidily. Editor-only: the engine
// gets the direct link (graphModel resolves it).
import { Handle, Position, type NodeProps } from "@xyflow/react";
import { memo } from "react";
import { typeColor } from "../catalog";
import { REROUTE_IN, REROUTE_OUT, type RerouteNode as RerouteNodeType } from "../graphModel";

function RerouteView({ id, data, selected }: NodeProps<RerouteNodeType>) {
  const color = data.wireType === "*" ? "#9aa0aa" : typeColor(data.wireType);
  return (
    <div className={`lg-reroute${selected ? " selected" : ""}`} data-testid={`reroute-${id}`} data-wire-type={data.wireType} style={{ background: color }}>
      <Handle type="target" position={Position.Left} id={REROUTE_IN} className="reroute-socket in" data-testid="handle-in-reroute" />
      <Handle type="source" position={Position.Right} id={REROUTE_OUT} className="reroute-socket out" data-testid="handle-out-reroute" />
    </div>
  );
}

export const RerouteNode = memo(RerouteView);
