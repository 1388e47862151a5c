// ConfigCompiler: Istio model → RouteTable.TableSpec.
