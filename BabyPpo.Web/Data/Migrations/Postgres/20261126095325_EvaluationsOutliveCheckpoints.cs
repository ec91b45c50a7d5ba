using Microsoft.EntityFrameworkCore.Migrations;

#nullable disable

namespace BabyPpo.Web.Data.Migrations.Postgres
{
    /// <inheritdoc />
    public partial class EvaluationsOutliveCheckpoints : Migration
    {
        /// <inheritdoc />
        protected override void Up(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "FK_evaluations_checkpoints_CheckpointId",
                table: "evaluations");

            migrationBuilder.AddForeignKey(
                name: "FK_evaluations_checkpoints_CheckpointId",
                table: "evaluations",
                column: "CheckpointId",
                principalTable: "checkpoints",
                principalColumn: "Id",
                onDelete: ReferentialAction.SetNull);
        }

        /// <inheritdoc />
        protected override void Down(MigrationBuilder migrationBuilder)
        {
            migrationBuilder.DropForeignKey(
                name: "FK_evaluations_checkpoints_CheckpointId",
                table: "evaluations");

            migrationBuilder.AddForeignKey(
                name: "FK_evaluations_checkpoints_CheckpointId",
                table: "evaluations",
                column: "CheckpointId",
                principalTable: "checkpoints",
                principalColumn: "Id",
                onDelete: ReferentialAction.Cascade);
        }
    }
}
